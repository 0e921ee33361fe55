-- Order changes capture applied (OrderChangeApplied), each once: the order's version it made, and what it made due
-- back to the customer. The order's lines and prices from then on replace `orders.prices` (and `skus`, `paid`), so
-- later returns are priced and checked against what the customer holds and paid for.
ALTER TABLE orders ADD COLUMN version integer NOT NULL DEFAULT 0;

CREATE TABLE order_changes (
    order_id      uuid NOT NULL REFERENCES orders (order_id),
    change_id     text NOT NULL,
    order_version integer NOT NULL,
    total         numeric(24, 4) NOT NULL,
    due_back      numeric(24, 4) NOT NULL CHECK (due_back >= 0),
    applied_at    timestamptz NOT NULL,
    PRIMARY KEY (order_id, change_id)
);

-- A refund is of a return's units, or of what an order change made due back: exactly one of the two.
ALTER TABLE refunds
    ALTER COLUMN return_id DROP NOT NULL,
    ADD COLUMN change_id text,
    ADD CONSTRAINT refund_of_return_or_change CHECK ((return_id IS NULL) <> (change_id IS NULL)),
    ADD CONSTRAINT refund_of_change FOREIGN KEY (order_id, change_id) REFERENCES order_changes (order_id, change_id);
