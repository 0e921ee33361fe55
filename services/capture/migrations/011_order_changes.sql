-- Order changes (issue 14). Each order keeps a version: 0 as taken in, one more for every change applied.
ALTER TABLE orders ADD COLUMN version integer NOT NULL DEFAULT 0;

-- Every change asked of an order, once per (order, change id), with the order before and after it and what it
-- costs: `to_pay` more than `paid_before` must be received (oms.payments.received) before it goes on; `due_back` is owed to the customer.
-- At most one change of an order is under way (awaiting payment, or requested of fulfillment) at a time.
CREATE TABLE order_changes (
    order_id      uuid NOT NULL REFERENCES orders (order_id),
    change_id     text NOT NULL,
    fingerprint   text NOT NULL,
    version       integer NOT NULL,
    state         text NOT NULL CHECK (state IN ('awaiting_payment', 'requested', 'accepted', 'refused', 'applied')),
    verdict       text NOT NULL,
    source        text NOT NULL,
    reason        text NOT NULL,
    notes         jsonb NOT NULL DEFAULT '[]',
    before        jsonb NOT NULL,
    after         jsonb NOT NULL,
    lines         jsonb NOT NULL,
    reduced       jsonb NOT NULL,
    reroute       boolean NOT NULL,
    total_before  numeric(24, 4) NOT NULL,
    total_after   numeric(24, 4) NOT NULL,
    paid_before   numeric(24, 4) NOT NULL,
    to_pay        numeric(24, 4) NOT NULL DEFAULT 0,
    due_back      numeric(24, 4) NOT NULL DEFAULT 0,
    outcome       text,
    requested_at  timestamptz NOT NULL,
    resolved_at   timestamptz,
    PRIMARY KEY (order_id, change_id)
);
CREATE UNIQUE INDEX order_changes_one_under_way ON order_changes (order_id)
    WHERE state IN ('awaiting_payment', 'requested');
CREATE UNIQUE INDEX order_changes_version ON order_changes (order_id, version)
    WHERE state IN ('awaiting_payment', 'requested', 'accepted', 'applied');
