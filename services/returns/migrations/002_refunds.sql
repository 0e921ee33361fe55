-- What the customer paid, from OrderValidated (absent for orders validated before capture announced it).
ALTER TABLE orders ADD COLUMN prices jsonb, ADD COLUMN shipping_price numeric(24, 4), ADD COLUMN paid numeric(24, 4);

-- One refund per receipt of a return to refund: asked of the payment provider under its idempotency key (the
-- provider pays a key once), answered succeeded, or abandoned after a refusal or the last attempt. `units` and
-- `shipping` are what it covers, so later refunds of the order never cover them again.
CREATE TABLE refunds (
    refund_id          uuid PRIMARY KEY,
    return_id          uuid NOT NULL REFERENCES returns (return_id),
    order_id           uuid NOT NULL,
    idempotency_key    text NOT NULL UNIQUE,
    amount             numeric(24, 4) NOT NULL CHECK (amount >= 0),
    currency           text NOT NULL,
    units              jsonb NOT NULL,
    shipping           numeric(24, 4) NOT NULL DEFAULT 0,
    explanation        jsonb NOT NULL,
    status             text NOT NULL CHECK (status IN ('requested', 'succeeded', 'abandoned')),
    attempts           integer NOT NULL DEFAULT 1,
    next_try_at        timestamptz,
    last_error         text,
    provider_reference text,
    requested_at       timestamptz NOT NULL,
    settled_at         timestamptz
);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_due ON refunds (next_try_at) WHERE status = 'requested';
