-- The facts the KPIs are worked out from, each table filled by one event type (or, for holds, one per column),
-- so the topics may be read in any order (decision 0001). Times are the events' own (payload or envelope), never
-- the time this service read them.

-- Validated orders (OrderValidated): when placed, the channel, where to, units per SKU.
CREATE TABLE orders (
    order_id     uuid PRIMARY KEY,
    channel      text NOT NULL,
    placed_at    timestamptz NOT NULL,
    ship_country text NOT NULL,
    ordered      jsonb NOT NULL
);
CREATE INDEX orders_placed ON orders (placed_at);

-- Orders refused at intake (OrderRejected).
CREATE TABLE rejections (
    order_id    uuid PRIMARY KEY,
    channel     text NOT NULL,
    rejected_at timestamptz NOT NULL
);
CREATE INDEX rejections_at ON rejections (rejected_at);

-- Holds (OrderHeld sets held_at and the channel; the last HoldReleased or HeldOrderCancelled sets ended_at).
CREATE TABLE holds (
    order_id  uuid PRIMARY KEY,
    channel   text,
    held_at   timestamptz,
    ended_at  timestamptz,
    cancelled boolean NOT NULL DEFAULT false
);
CREATE INDEX holds_held ON holds (held_at);
CREATE INDEX holds_open ON holds (held_at) WHERE ended_at IS NULL;

-- The first allocation decision (OrderAllocated, OrderBackordered or OrderUnfulfillable, the earliest by its time):
-- units reserved per SKU before any backorder was released.
CREATE TABLE first_allocations (
    order_id     uuid PRIMARY KEY,
    outcome      text NOT NULL CHECK (outcome IN ('allocated', 'backordered', 'unfulfillable')),
    reserved     jsonb NOT NULL,
    allocated_at timestamptz NOT NULL
);

-- Orders cancelled whole (OrderCancelled without lines).
CREATE TABLE cancellations (
    order_id     uuid PRIMARY KEY,
    cancelled_at timestamptz NOT NULL
);

-- Lines cancelled from an order that goes on (OrderCancelled with lines), one row per event: no longer owed, so
-- an order is in full without them.
CREATE TABLE cancelled_lines (
    event_id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    lines    jsonb NOT NULL
);
CREATE INDEX cancelled_lines_order ON cancelled_lines (order_id);

-- Shipments (OrderShipped): when packed and handed over, the promise, carrier and service, units per SKU.
CREATE TABLE shipments (
    pick_task_id      uuid PRIMARY KEY,
    order_id          uuid NOT NULL,
    warehouse_id      text NOT NULL,
    carrier           text NOT NULL,
    service           text,
    shipped_at        timestamptz NOT NULL,
    promised_delivery date,
    lines             jsonb NOT NULL
);
CREATE INDEX shipments_order ON shipments (order_id);

-- Deliveries (OrderDelivered: every known shipment delivered), the latest.
CREATE TABLE deliveries (
    order_id     uuid PRIMARY KEY,
    delivered_at timestamptz NOT NULL
);

-- Carriers' delivery exceptions (DeliveryException); `documents` when they say the address or papers were wrong.
CREATE TABLE delivery_exceptions (
    pick_task_id uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    order_id     uuid NOT NULL,
    documents    boolean NOT NULL,
    PRIMARY KEY (pick_task_id, occurred_at)
);
CREATE INDEX delivery_exceptions_order ON delivery_exceptions (order_id);

-- Returns authorised (ReturnAuthorised); `damaged` when a line's reason is a damage reason.
CREATE TABLE returns (
    return_id     uuid PRIMARY KEY,
    order_id      uuid NOT NULL,
    damaged       boolean NOT NULL,
    authorised_at timestamptz NOT NULL
);
CREATE INDEX returns_order ON returns (order_id);

-- Weights from the catalogue (ProductUpserted), to price shipments by the carriers' weight bands.
CREATE TABLE products (
    sku          text PRIMARY KEY,
    weight_grams integer NOT NULL
);
