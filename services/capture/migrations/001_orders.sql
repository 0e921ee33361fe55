CREATE TABLE orders (
    order_id     uuid PRIMARY KEY,
    channel      text NOT NULL,
    external_id  text NOT NULL,
    status       text NOT NULL,
    received_at  timestamptz NOT NULL,
    placed_at    timestamptz NOT NULL,
    currency     text NOT NULL,
    total        numeric(14, 4) NOT NULL,
    reasons      jsonb NOT NULL DEFAULT '[]',
    document     jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_channel_external_id UNIQUE (channel, external_id)
);

CREATE TABLE order_timeline (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    status      text NOT NULL,
    occurred_at timestamptz NOT NULL,
    detail      text
);
CREATE INDEX order_timeline_order ON order_timeline (order_id, occurred_at);

-- Capture's own copy of the catalogue (from oms.catalog.products), to check SKUs at intake.
CREATE TABLE products (
    sku          text PRIMARY KEY,
    name         text NOT NULL,
    weight_grams integer NOT NULL,
    active       boolean NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
