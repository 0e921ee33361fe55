-- A reservation is rewritten once, when it ships (or is released). Its open index names the status, so the update
-- cannot be HOT, but with full pages the new version also went to another page, and PostgreSQL logged a lock of
-- the old one first: about five extra WAL records per order. A fifth of each page kept free keeps it beside the old.
ALTER TABLE reservations SET (fillfactor = 80);
