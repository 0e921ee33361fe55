-- Cancel requests a channel published for an order capture has not seen yet (orders and cancel requests travel
-- on different topics). Held here, never dead-lettered: applied in the order's intake transaction when it arrives
-- ('applied', with what became of it), or answered as 'expired' when no order claims it within the configured
-- window (OMS_EARLY_CANCEL_WINDOW_SECONDS). A repeat of the same request (same lines) is held once.
CREATE TABLE early_cancel_requests (
    channel     text NOT NULL,
    external_id text NOT NULL,
    fingerprint text NOT NULL,
    event_id    uuid NOT NULL,
    lines       jsonb,
    reason      text NOT NULL,
    state       text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'applied', 'expired')),
    outcome     text,
    order_id    uuid REFERENCES orders (order_id),
    held_since  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    PRIMARY KEY (channel, external_id, fingerprint)
);
CREATE INDEX early_cancel_requests_held ON early_cancel_requests (held_since) WHERE state = 'held';
