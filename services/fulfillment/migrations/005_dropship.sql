-- Purchase orders for dropship suppliers: one per (order, supplier), its id the one allocation gave it. `lines` were
-- ordered, `held` is what the supplier still holds (less a partial acceptance's remainder, empty once declined).
CREATE TABLE purchase_orders (
    purchase_order_id uuid PRIMARY KEY,
    order_id          uuid NOT NULL,
    supplier_id       text NOT NULL,
    lines             jsonb NOT NULL,
    held              jsonb NOT NULL,
    ship_to           jsonb NOT NULL,
    service_level     text NOT NULL,
    status            text NOT NULL CHECK (status IN ('issued', 'acknowledged', 'partially_accepted', 'rejected',
                                                      'timed_out', 'shipped', 'cancelled')),
    issued_at         timestamptz NOT NULL,
    answer_by         timestamptz NOT NULL,
    ship_by           date NOT NULL,
    answered_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_orders_order ON purchase_orders (order_id);
CREATE INDEX purchase_orders_unanswered ON purchase_orders (answer_by) WHERE status = 'issued';

-- Every supplier report and what it did: applied, or ignored (late, repeated, or after a timeout).
CREATE TABLE supplier_reports (
    event_id          uuid PRIMARY KEY,
    purchase_order_id uuid NOT NULL REFERENCES purchase_orders (purchase_order_id),
    kind              text NOT NULL,
    occurred_at       timestamptz NOT NULL,
    outcome           text NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX supplier_reports_purchase_order ON supplier_reports (purchase_order_id);

-- A shipment is a pick task's parcel or a supplier's (its id then the purchase order's).
ALTER TABLE shipments DROP CONSTRAINT shipments_pick_task_id_fkey;
