-- Pick tasks can be short-picked (what was picked is kept), emptied by a short pick, or withdrawn by a
-- cancellation; each carries the delivery date promised when it was released to the warehouse.
ALTER TABLE pick_tasks DROP CONSTRAINT pick_tasks_status_check;
ALTER TABLE pick_tasks ADD CONSTRAINT pick_tasks_status_check
    CHECK (status IN ('released', 'picked', 'short_picked', 'nothing_picked', 'packed', 'cancelled'));
ALTER TABLE pick_tasks
    ADD COLUMN picked_lines      jsonb,
    ADD COLUMN promised_delivery date,
    ADD COLUMN cancel_reason     text;

-- The carrier service chosen from the rate table, what it costs, the lines in the parcel and the promise.
ALTER TABLE shipments
    ADD COLUMN service                text,
    ADD COLUMN zone                   text,
    ADD COLUMN price                  numeric(12, 2),
    ADD COLUMN lines                  jsonb,
    ADD COLUMN leaves_on              date,
    ADD COLUMN expected_delivery      date,
    ADD COLUMN promised_delivery      date,
    ADD COLUMN tracking_url           text,
    ADD COLUMN last_carrier_status_at timestamptz,
    ADD COLUMN exception_at           timestamptz,
    ADD COLUMN exception_detail       text;

-- Every carrier update, once per (tracking number, kind, time): a carrier resending one changes nothing.
CREATE TABLE carrier_events (
    tracking_number text NOT NULL REFERENCES shipments (tracking_number),
    kind            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    detail          text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tracking_number, kind, occurred_at)
);

-- Every warehouse report and what it did: applied, or ignored (late, repeated, or for a withdrawn task).
CREATE TABLE warehouse_reports (
    event_id     uuid PRIMARY KEY,
    pick_task_id uuid NOT NULL REFERENCES pick_tasks (pick_task_id),
    kind         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    outcome      text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX warehouse_reports_task ON warehouse_reports (pick_task_id);

-- Every cancellation request and its outcome; an accepted whole-order cancellation also withdraws any
-- shipment allocation creates for the order afterwards.
CREATE TABLE cancellations (
    event_id            uuid PRIMARY KEY,
    order_id            uuid NOT NULL,
    lines               jsonb,
    outcome             text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    reason              text NOT NULL,
    refusal             text,
    withdrawn_shipments uuid[] NOT NULL DEFAULT '{}',
    decided_at          timestamptz NOT NULL
);
CREATE INDEX cancellations_order ON cancellations (order_id);
