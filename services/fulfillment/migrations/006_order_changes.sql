-- Order changes (issue 14): every change asked of an order and fulfillment's decision. An accepted change withdrew
-- the pick tasks it touched; a shipment of an older version reaching fulfillment afterwards is born withdrawn.
CREATE TABLE order_changes (
    event_id            uuid PRIMARY KEY,
    order_id            uuid NOT NULL,
    change_id           text NOT NULL,
    order_version       integer NOT NULL,
    ship_to             jsonb NOT NULL,
    service_level       text NOT NULL,
    lines               jsonb NOT NULL,
    reason              text NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    refusal             text,
    withdrawn_shipments uuid[] NOT NULL DEFAULT '{}',
    decided_at          timestamptz NOT NULL
);
CREATE UNIQUE INDEX order_changes_accepted_version ON order_changes (order_id, order_version)
    WHERE outcome = 'accepted';

-- The order's version a pick task was released under (0: before any change).
ALTER TABLE pick_tasks ADD COLUMN order_version integer NOT NULL DEFAULT 0;
