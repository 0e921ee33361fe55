-- The order's progress per SKU (what was ordered, waits for stock, was cancelled, has shipped), so the
-- status can follow the transition table; each timeline step also says the order's status after it.
ALTER TABLE orders
    ADD COLUMN ordered     jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN backordered jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN cancelled   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN shipped     jsonb NOT NULL DEFAULT '{}';
UPDATE orders SET ordered = coalesce(
    (SELECT jsonb_object_agg(sku, quantity) FROM (
        SELECT line ->> 'sku' AS sku, sum((line ->> 'quantity')::int) AS quantity
        FROM jsonb_array_elements(document -> 'lines') AS line GROUP BY 1) AS per_sku),
    '{}');
-- 'released' was a status before the transition table; a released pick task leaves the order allocated.
UPDATE orders SET status = 'allocated' WHERE status = 'released';
ALTER TABLE orders ADD CONSTRAINT orders_status CHECK (status IN (
    'received', 'validated', 'rejected', 'backordered', 'allocated', 'partially_shipped', 'shipped',
    'delivered', 'cancelled', 'exception'));

ALTER TABLE order_timeline ADD COLUMN order_status text;
UPDATE order_timeline t SET order_status = o.status FROM orders o WHERE o.order_id = t.order_id;

-- Cancel requests capture passed on to fulfillment; a repeat of the same request (same lines) is recognised
-- by its fingerprint and not passed on twice. Fulfillment's answer resolves the request it was caused by
-- (event_id: the OrderCancellationRequested event), else the oldest open one.
CREATE TABLE cancel_requests (
    order_id     uuid NOT NULL REFERENCES orders (order_id),
    fingerprint  text NOT NULL,
    event_id     uuid NOT NULL,
    lines        jsonb,
    reason       text NOT NULL,
    source       text NOT NULL,
    state        text NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'accepted', 'refused')),
    outcome      text,
    requested_at timestamptz NOT NULL,
    resolved_at  timestamptz,
    PRIMARY KEY (order_id, fingerprint)
);

-- Shopify webhook deliveries taken in, by Shopify's delivery id: a redelivery is answered, not stored again.
CREATE TABLE shopify_webhooks (
    webhook_id  text PRIMARY KEY,
    shop_domain text NOT NULL,
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    received_at timestamptz NOT NULL DEFAULT now()
);
