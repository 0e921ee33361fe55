-- Replenishment suggestions (draft purchase orders for purchasing), one open per (warehouse, sku): the unique index
-- below refuses a second whatever the code above does. A receipt whose reference names a suggestion closes it
-- (`received_by` is that reference).
CREATE TABLE replenishment_suggestions (
    suggestion_id  uuid PRIMARY KEY,
    warehouse_id   text NOT NULL,
    sku            text NOT NULL,
    supplier       text NOT NULL,
    quantity       integer NOT NULL CHECK (quantity > 0),
    forecast       integer NOT NULL,
    on_hand        integer NOT NULL,
    reserved       integer NOT NULL,
    on_order       integer NOT NULL,
    minimum        integer NOT NULL,
    maximum        integer NOT NULL,
    pack_multiple  integer NOT NULL CHECK (pack_multiple > 0),
    lead_time_days integer NOT NULL,
    expected_by    date NOT NULL,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'received')),
    opened_at      timestamptz NOT NULL DEFAULT now(),
    received_at    timestamptz,
    received_by    text,
    CONSTRAINT closed_by_a_receipt CHECK ((status = 'open') = (received_at IS NULL AND received_by IS NULL))
);
CREATE UNIQUE INDEX replenishment_one_open ON replenishment_suggestions (warehouse_id, sku) WHERE status = 'open';

-- Demand history: units reserved per day (UTC) per (warehouse, sku) by routing decisions (a first allocation, a
-- backorder released, a re-route after a short pick), for the suggested reorder point.
CREATE TABLE demand (
    warehouse_id text NOT NULL,
    sku          text NOT NULL,
    day          date NOT NULL,
    units        integer NOT NULL CHECK (units > 0),
    PRIMARY KEY (warehouse_id, sku, day)
);
CREATE INDEX demand_day ON demand (day);
