-- Units of an order with dropship suppliers, per supplier id ({supplier: {sku: units}}): neither waiting for stock
-- nor reserved. A supplier's declined units leave it and are routed to a warehouse or wait.
ALTER TABLE orders ADD COLUMN dropship jsonb NOT NULL DEFAULT '{}';
