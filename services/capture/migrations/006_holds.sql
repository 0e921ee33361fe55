-- Risk and holds (issue 11). An order the risk rules do not accept goes on hold ('on_hold') instead of being
-- announced to allocation; it is announced (validated) when its last hold is released, or cancelled from hold.
ALTER TABLE orders DROP CONSTRAINT orders_status;
ALTER TABLE orders ADD CONSTRAINT orders_status CHECK (status IN (
    'received', 'on_hold', 'validated', 'rejected', 'backordered', 'allocated', 'partially_shipped', 'shipped',
    'delivered', 'cancelled', 'exception'));

-- The assessment of every order that passed validation: score, level, recommendation and the rules that fired.
CREATE TABLE risk_assessments (
    order_id       uuid PRIMARY KEY REFERENCES orders (order_id),
    score          integer NOT NULL,
    level          text NOT NULL CHECK (level IN ('low', 'medium', 'high')),
    recommendation text NOT NULL CHECK (recommendation IN ('accept', 'investigate', 'cancel')),
    rules          jsonb NOT NULL,
    assessed_at    timestamptz NOT NULL
);

-- What each order taken in is counted by for velocity (digests of its normalised e-mail, shipping address,
-- payment reference and IP: no personal data in clear), with its amount and when it came.
CREATE TABLE order_risk_keys (
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    dimension   text NOT NULL CHECK (dimension IN ('email', 'address', 'payment', 'ip')),
    key         text NOT NULL,
    amount      numeric(24, 4) NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, dimension)
);
CREATE INDEX order_risk_keys_lookup ON order_risk_keys (dimension, key, received_at);

-- Holds, typed and stackable: one per (order, type), with why, who or what placed it, and how it ended
-- (state: released by an operator, or ended when the order was cancelled from hold by someone or by its time
-- limit; released_by and released_at say who or what ended it, and when).
CREATE TABLE holds (
    order_id    uuid NOT NULL REFERENCES orders (order_id),
    hold_type   text NOT NULL CHECK (hold_type IN ('fraud', 'credit', 'address', 'payment')),
    reason      text NOT NULL,
    placed_by   text NOT NULL,
    placed_at   timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released', 'cancelled', 'expired')),
    released_by text,
    released_at timestamptz,
    note        text,
    PRIMARY KEY (order_id, hold_type)
);
CREATE INDEX holds_held ON holds (placed_at) WHERE state = 'held';
