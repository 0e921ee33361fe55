-- One pick task per shipment; its id is the shipment id allocation gave it.
CREATE TABLE pick_tasks (
    pick_task_id  uuid PRIMARY KEY,
    order_id      uuid NOT NULL,
    warehouse_id  text NOT NULL,
    lines         jsonb NOT NULL,
    ship_to       jsonb NOT NULL,
    service_level text NOT NULL,
    status        text NOT NULL CHECK (status IN ('released', 'picked', 'packed', 'short_picked')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pick_tasks_order ON pick_tasks (order_id);

CREATE SEQUENCE tracking_numbers;

CREATE TABLE shipments (
    tracking_number text PRIMARY KEY,
    pick_task_id    uuid NOT NULL UNIQUE REFERENCES pick_tasks (pick_task_id),
    order_id        uuid NOT NULL,
    carrier         text NOT NULL,
    weight_grams    integer,
    shipped_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_carrier_status text
);
CREATE INDEX shipments_order ON shipments (order_id);
