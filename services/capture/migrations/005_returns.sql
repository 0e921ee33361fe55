-- The order's returns as the returns service announces them, for the order view: units per return and SKU asked
-- back, authorised and received, and the refunds paid.
CREATE TABLE return_lines (
    return_id  uuid NOT NULL,
    sku        text NOT NULL,
    order_id   uuid NOT NULL,
    asked      integer NOT NULL,
    authorised integer NOT NULL DEFAULT 0,
    received   integer NOT NULL DEFAULT 0,
    state      text NOT NULL,
    PRIMARY KEY (return_id, sku)
);
CREATE INDEX return_lines_order ON return_lines (order_id);

CREATE TABLE refunds (
    refund_id   uuid PRIMARY KEY,
    order_id    uuid NOT NULL,
    amount      numeric(24, 4) NOT NULL,
    currency    text NOT NULL,
    refunded_at timestamptz NOT NULL
);
CREATE INDEX refunds_order ON refunds (order_id);
