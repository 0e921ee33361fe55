-- A dearer exchange: its difference is charged on the order's payment before capture is asked to open the
-- exchange order. `status`: charging (asked of the provider), ordered (capture asked to open it), charge_failed
-- (refused, or every attempt failed: no exchange order, the returned units' value refunded instead).
ALTER TABLE exchanges ADD COLUMN status text NOT NULL DEFAULT 'ordered'
    CHECK (status IN ('charging', 'ordered', 'charge_failed'));

-- One charge per dearer exchange, asked of the payment provider under its idempotency key (the provider charges a
-- key once), answered succeeded, or abandoned after a refusal or the last attempt.
CREATE TABLE charges (
    charge_id          uuid PRIMARY KEY,
    exchange_id        uuid NOT NULL UNIQUE REFERENCES exchanges (exchange_id),
    return_id          uuid NOT NULL REFERENCES returns (return_id),
    order_id           uuid NOT NULL,
    idempotency_key    text NOT NULL UNIQUE,
    amount             numeric(24, 4) NOT NULL CHECK (amount > 0),
    currency           text NOT NULL,
    status             text NOT NULL CHECK (status IN ('requested', 'succeeded', 'abandoned')),
    attempts           integer NOT NULL DEFAULT 1,
    next_try_at        timestamptz,
    last_error         text,
    provider_reference text,
    requested_at       timestamptz NOT NULL,
    settled_at         timestamptz
);
CREATE INDEX charges_due ON charges (next_try_at) WHERE status = 'requested';

-- A refund that pays back a charge the provider made after the exchange was given up (its answer came after the
-- last attempt): not money of the order's payment, so it does not count against what the order may still have
-- refunded.
ALTER TABLE refunds ADD COLUMN charge_id uuid UNIQUE REFERENCES charges (charge_id);
