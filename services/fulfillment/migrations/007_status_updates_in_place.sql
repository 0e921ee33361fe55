-- A pick task changes about three times (picked, packed, shipped) and a shipment twice (in transit, delivered).
-- Their indexes do not name the columns that change, but full pages left no room for the new version beside the
-- old, so each change wrote an entry in every index. A fifth of each page kept free lets PostgreSQL update in
-- place (a HOT update).
ALTER TABLE pick_tasks SET (fillfactor = 80);
ALTER TABLE shipments SET (fillfactor = 80);
