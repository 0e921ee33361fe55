-- Credit limits of business accounts (issue 11). An order bought on an account names it; what was paid for an order
-- (up front, or later by payments reported on oms.payments.received) is kept beside its total, so the account's
-- exposure is its open and unpaid orders' value after cancellations less what was paid.
ALTER TABLE orders
    ADD COLUMN account text,
    ADD COLUMN paid numeric(24, 4) NOT NULL DEFAULT 0;
CREATE INDEX orders_account_open ON orders (account) WHERE account IS NOT NULL AND status NOT IN ('rejected', 'cancelled');

-- Payments received after intake, each counted once (a payment id reported again changes nothing).
CREATE TABLE payments (
    payment_id  text PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    amount      numeric(24, 4) NOT NULL CHECK (amount > 0),
    currency    text NOT NULL,
    received_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order ON payments (order_id);
