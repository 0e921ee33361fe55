-- An exchange: what the customer gets instead (asked with the return), and the exchange order asked of capture
-- once the returned units are back (one per return), with the returned value and the difference settled.
ALTER TABLE returns ADD COLUMN exchange_for jsonb;

CREATE TABLE exchanges (
    exchange_id  uuid PRIMARY KEY,
    return_id    uuid NOT NULL UNIQUE REFERENCES returns (return_id),
    order_id     uuid NOT NULL,
    credit       numeric(24, 4) NOT NULL,
    difference   numeric(24, 4) NOT NULL,
    requested_at timestamptz NOT NULL
);
