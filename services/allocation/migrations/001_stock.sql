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

-- Orders allocation has seen: allocated, or backordered and waiting (oldest first) for stock.
CREATE TABLE orders (
    order_id      uuid PRIMARY KEY,
    status        text NOT NULL CHECK (status IN ('allocated', 'backordered')),
    lines         jsonb NOT NULL,
    skus          text[] NOT NULL,
    ship_to       jsonb NOT NULL,
    service_level text NOT NULL,
    waiting_since timestamptz NOT NULL,
    reason        text
);
CREATE INDEX orders_backordered ON orders USING gin (skus) WHERE status = 'backordered';

-- One row per (shipment, sku): a shipment is what one warehouse ships for one order (one pick task).
CREATE TABLE reservations (
    shipment_id  uuid NOT NULL,
    order_id     uuid NOT NULL REFERENCES orders (order_id),
    warehouse_id text NOT NULL,
    sku          text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'shipped')),
    PRIMARY KEY (shipment_id, sku),
    FOREIGN KEY (warehouse_id, sku) REFERENCES stock (warehouse_id, sku)
);
CREATE INDEX reservations_order ON reservations (order_id);

-- Applied adjustments: a replayed receipt or count (same warehouse and reference) changes nothing.
CREATE TABLE adjustments (
    warehouse_id text NOT NULL,
    reference    text NOT NULL,
    sku          text NOT NULL,
    kind         text NOT NULL,
    quantity     integer NOT NULL,
    shortfall    integer NOT NULL DEFAULT 0,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, reference)
);
