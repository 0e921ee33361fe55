-- The return rate by channel from running totals. The gauge summed every shipment ever stored, every 30 s: 5.7 s of
-- database time a round at 215,000 orders, and more with every order.
CREATE TABLE channel_totals (
    channel  text PRIMARY KEY,
    shipped  bigint NOT NULL DEFAULT 0 CHECK (shipped >= 0),   -- units shipped, of orders known here
    returned bigint NOT NULL DEFAULT 0 CHECK (returned >= 0)   -- units received back on their RMA
);

-- Shipments stored but not yet in their channel's total. An order and its shipments arrive on different topics, in
-- either order, so a shipment is counted later, once its order is known (repository.count_shipments), and removed.
CREATE TABLE uncounted_shipments (
    shipment_id uuid PRIMARY KEY
);

-- What the old query counted: the units of shipments whose order is known, and the units received on return lines
-- of what those orders shipped.
INSERT INTO channel_totals (channel, shipped, returned)
SELECT o.channel, sum(s.quantity), coalesce(sum(r.returned), 0)
FROM (SELECT order_id, sku, sum(quantity) AS quantity FROM shipped_units GROUP BY order_id, sku) s
JOIN orders o USING (order_id)
LEFT JOIN (SELECT t.order_id, l.sku, sum(l.received) AS returned FROM returns t
           JOIN return_lines l USING (return_id) GROUP BY t.order_id, l.sku) r USING (order_id, sku)
GROUP BY o.channel;

INSERT INTO uncounted_shipments (shipment_id)
SELECT shipment_id FROM shipments s WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = s.order_id);
