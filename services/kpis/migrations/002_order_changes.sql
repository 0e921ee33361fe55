-- Order changes, one row per (order, change), each column filled by one event type so they may arrive in any order:
-- passed on by capture (OrderChangeRequested), applied with what it made due back (OrderChangeApplied), refused by
-- fulfillment (OrderChangeRefused: the warehouse had started), refunded (ChangeRefunded). Times: the first seen.
-- `lines`: units per SKU the order holds after the applied change (of version `order_version`): the latest applied
-- change is what an order is in full against.
CREATE TABLE order_changes (
    order_id     uuid NOT NULL,
    change_id    text NOT NULL,
    requested_at timestamptz,
    applied_at   timestamptz,
    refused_at   timestamptz,
    currency     text,
    due_back     numeric(24, 4),
    refunded     numeric(24, 4),
    order_version integer,
    lines        jsonb,
    PRIMARY KEY (order_id, change_id)
);
