-- A goods receipt lists several SKUs under one receipt number, and warehouses send it line by line: an
-- adjustment is identified by (warehouse, reference, sku). Keyed by (warehouse, reference) alone, the first
-- line of a receipt was applied and the others were silently taken for replays of it.
ALTER TABLE adjustments DROP CONSTRAINT adjustments_pkey;
ALTER TABLE adjustments ADD PRIMARY KEY (warehouse_id, reference, sku);
