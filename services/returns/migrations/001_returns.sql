-- What returns knows of the orders it may take back, from the other services' events (each table filled by one
-- event type, so they may arrive in any order): the order (validated), its shipped units, its delivery.
CREATE TABLE orders (
    order_id    uuid PRIMARY KEY,
    channel     text NOT NULL,
    external_id text NOT NULL,
    country     text NOT NULL,
    currency    text NOT NULL,
    skus        text[] NOT NULL,
    received_at timestamptz NOT NULL,
    UNIQUE (channel, external_id)
);

CREATE TABLE shipped_units (
    order_id     uuid NOT NULL,
    shipment_id  uuid NOT NULL,
    warehouse_id text NOT NULL,
    sku          text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, sku)
);
CREATE INDEX shipped_units_order ON shipped_units (order_id);

CREATE TABLE deliveries (
    order_id     uuid PRIMARY KEY,
    delivered_at timestamptz NOT NULL
);

-- The catalogue copy returns needs: the category (return windows, non-returnable goods) and the weight (labels).
CREATE TABLE products (
    sku          text PRIMARY KEY,
    category     text,
    weight_grams integer NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE rma_serial;

-- One row per return request, whatever its outcome (the decision and its reasons are kept). `request_key`
-- (`<channel>:<the channel's request id>`) makes a repeated request return the first one's answer.
CREATE TABLE returns (
    return_id    uuid PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES orders (order_id),
    request_key  text UNIQUE,
    source       text NOT NULL CHECK (source IN ('api', 'topic')),
    status       text NOT NULL
        CHECK (status IN ('authorised', 'review', 'rejected', 'partially_received', 'received', 'closed')),
    resolution   text NOT NULL,
    note         text,
    reasons      jsonb NOT NULL DEFAULT '[]',
    rma          text UNIQUE,
    warehouse_id text,
    label        jsonb,
    requested_at timestamptz NOT NULL,
    decided_at   timestamptz,
    decided_by   text,
    expires_at   timestamptz,
    closed_at    timestamptz,
    CONSTRAINT authorised_has_rma CHECK ((rma IS NULL) = (status IN ('review', 'rejected')))
);
CREATE INDEX returns_order ON returns (order_id);
CREATE INDEX returns_open_rma ON returns (expires_at) WHERE status IN ('authorised', 'partially_received');

CREATE TABLE return_lines (
    return_id uuid NOT NULL REFERENCES returns (return_id),
    sku       text NOT NULL,
    quantity  integer NOT NULL CHECK (quantity > 0),
    reason    text NOT NULL,
    received  integer NOT NULL DEFAULT 0 CHECK (received BETWEEN 0 AND quantity),
    PRIMARY KEY (return_id, sku)
);

-- What warehouses found in return parcels, per receipt: accepted on the RMA (with its disposition) or set
-- aside for review (`expected` false: not on the RMA, more than it authorised, or after it closed).
CREATE TABLE received_units (
    warehouse_id text NOT NULL,
    receipt      text NOT NULL,
    sku          text NOT NULL,
    disposition  text NOT NULL CHECK (disposition IN ('restock', 'quarantine', 'refurbish', 'scrap')),
    expected     boolean NOT NULL,
    return_id    uuid NOT NULL REFERENCES returns (return_id),
    quantity     integer NOT NULL CHECK (quantity > 0),
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (warehouse_id, receipt, sku, disposition, expected)
);
CREATE INDEX received_units_return ON received_units (return_id);
