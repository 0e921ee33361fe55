-- Stock per (warehouse, sku): on hand counts units in the building, reserved those promised to open
-- reservations; shipping takes units out of both. The checks make overselling impossible whatever the code above does.
CREATE TABLE stock (
    warehouse_id text NOT NULL,
    sku          text NOT NULL,
    on_hand      integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved     integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, sku),
    CONSTRAINT stock_not_oversold CHECK (reserved <= on_hand)
);
CREATE INDEX stock_sku ON stock (sku);

CREATE TABLE products (
    sku          text PRIMARY KEY,
    name         text NOT NULL,
    weight_grams integer NOT NULL,
    active       boolean NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Orders allocation has seen. Of `lines` (units ordered per sku), `cancelled` were cancelled, `backordered`
-- wait for stock (first come first served by arrival), and the rest are in reservations.
CREATE TABLE orders (
    order_id         uuid PRIMARY KEY,
    channel          text NOT NULL,
    backorder_policy text NOT NULL CHECK (backorder_policy IN ('backorder', 'reject')),
    status           text NOT NULL CHECK (status IN ('allocated', 'backordered', 'cancelled', 'unfulfillable')),
    lines            jsonb NOT NULL,
    backordered      jsonb NOT NULL DEFAULT '{}',
    cancelled        jsonb NOT NULL DEFAULT '{}',
    skus             text[] NOT NULL,
    waiting_skus     text[] NOT NULL DEFAULT '{}',
    ship_to          jsonb NOT NULL,
    service_level    text NOT NULL,
    arrived_at       timestamptz NOT NULL,
    reason           text,
    CONSTRAINT waits_only_when_backordered CHECK ((status = 'backordered') = (cardinality(waiting_skus) > 0))
);
CREATE INDEX orders_waiting ON orders USING gin (waiting_skus) WHERE status = 'backordered';

-- One row per (shipment, sku): a shipment is what one warehouse ships for one order (one pick task).
-- `short` units were not found by the warehouse: they left on hand and are not part of the shipment.
CREATE TABLE reservations (
    shipment_id  uuid NOT NULL,
    sku          text NOT NULL,
    order_id     uuid NOT NULL REFERENCES orders (order_id),
    warehouse_id text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    short        integer NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'shipped', 'released')),
    PRIMARY KEY (shipment_id, sku),
    FOREIGN KEY (warehouse_id, sku) REFERENCES stock (warehouse_id, sku),
    CONSTRAINT short_within_quantity CHECK (short BETWEEN 0 AND quantity)
);
CREATE INDEX reservations_order ON reservations (order_id);
CREATE INDEX reservations_open ON reservations (warehouse_id, sku) WHERE status = 'open';

-- Cancellations accepted before allocation saw the order (the two travel on different topics), applied
-- when the order arrives. `lines` NULL: the whole order.
CREATE TABLE early_cancellations (
    order_id    uuid PRIMARY KEY,
    lines       jsonb,
    reason      text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now()
);

-- Applied adjustments: a replayed receipt or count (same warehouse and reference) changes nothing.
-- `on_hand_change` is what it did to on hand, so on hand can always be explained from this ledger,
-- the shipped and the short units.
CREATE TABLE adjustments (
    warehouse_id   text NOT NULL,
    reference      text NOT NULL,
    sku            text NOT NULL,
    kind           text NOT NULL,
    quantity       integer NOT NULL,
    shortfall      integer NOT NULL DEFAULT 0,
    on_hand_change integer NOT NULL DEFAULT 0,
    applied_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, reference)
);
CREATE INDEX adjustments_stock ON adjustments (warehouse_id, sku);

-- The last guard: at commit, every stock row a transaction touched reserves exactly what its open
-- reservations hold. A bug that leaks or double-counts a reservation fails the transaction instead.
CREATE FUNCTION check_reserved_matches_reservations() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    booked integer;
    held   integer;
BEGIN
    SELECT reserved INTO booked FROM stock WHERE warehouse_id = NEW.warehouse_id AND sku = NEW.sku;
    SELECT coalesce(sum(quantity - short), 0) INTO held FROM reservations
     WHERE warehouse_id = NEW.warehouse_id AND sku = NEW.sku AND status = 'open';
    IF booked IS DISTINCT FROM held THEN
        RAISE EXCEPTION 'stock %/% reserves % units but its open reservations hold %',
            NEW.warehouse_id, NEW.sku, booked, held
            USING ERRCODE = 'check_violation', CONSTRAINT = 'reserved_matches_reservations';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER stock_reserved_matches_reservations AFTER INSERT ON stock
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_reserved_matches_reservations();
CREATE CONSTRAINT TRIGGER stock_reserved_change_matches_reservations AFTER UPDATE ON stock
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.reserved IS DISTINCT FROM NEW.reserved)
    EXECUTE FUNCTION check_reserved_matches_reservations();
CREATE CONSTRAINT TRIGGER reservations_match_stock AFTER INSERT OR UPDATE ON reservations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_reserved_matches_reservations();
