-- A product's weight prices only the shipments that hold it: a new or changed weight notes its SKU here, and the
-- gauges' next round reads again the orders with a shipment of that SKU, as its own snapshot sees them
-- (services/kpis/window.py), instead of the whole window. A row names an order or a SKU; one with neither (noted by
-- an earlier version, for a product) still has the next round read the whole window.
ALTER TABLE facts_changed ADD COLUMN sku text;
