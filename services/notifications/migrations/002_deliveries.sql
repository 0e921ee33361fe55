-- The order's reference and sales channel go with the contact: messages show the reference, and webhooks
-- are configured per sales channel.
ALTER TABLE contacts
    ADD COLUMN reference     text NOT NULL DEFAULT '',
    ADD COLUMN sales_channel text NOT NULL DEFAULT '';

-- What of each order still waits for stock (from allocation's events): a shipment of an order that still
-- has backordered units is a partial shipment.
CREATE TABLE backorders (
    order_id   uuid PRIMARY KEY,
    items      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One message per (order, kind, shipment): shipment-level kinds (shipped, partially shipped, delivery
-- exception) carry the shipment id, order-level kinds ''. Once its recipient is known a message is
-- rendered (planned_at), and what was rendered is kept: that is what every channel sends.
ALTER TABLE messages DROP CONSTRAINT messages_pkey;
ALTER TABLE messages ADD COLUMN shipment_key text NOT NULL DEFAULT '';
ALTER TABLE messages ADD PRIMARY KEY (order_id, kind, shipment_key);
ALTER TABLE messages
    ADD COLUMN planned_at timestamptz,
    ADD COLUMN subject    text,
    ADD COLUMN text_body  text,
    ADD COLUMN html_body  text,
    ADD COLUMN render_error text;  -- a message its template could not render (a bug): kept, never sent
CREATE INDEX messages_unplanned ON messages (created_at) WHERE planned_at IS NULL;

-- Delivery state per (message, channel): 'email', or 'webhook:<endpoint name>' with the exact body signed.
CREATE TABLE deliveries (
    order_id     uuid NOT NULL,
    kind         text NOT NULL,
    shipment_key text NOT NULL,
    channel      text NOT NULL,
    body         bytea,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    next_try_at  timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    PRIMARY KEY (order_id, kind, shipment_key, channel),
    FOREIGN KEY (order_id, kind, shipment_key) REFERENCES messages (order_id, kind, shipment_key)
);
CREATE INDEX deliveries_due ON deliveries (next_try_at) WHERE status = 'pending';

-- Every attempt to deliver, successful or not.
CREATE TABLE delivery_attempts (
    id           bigserial PRIMARY KEY,
    order_id     uuid NOT NULL,
    kind         text NOT NULL,
    shipment_key text NOT NULL,
    channel      text NOT NULL,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    succeeded    boolean NOT NULL,
    detail       text,
    duration_ms  integer NOT NULL
);
CREATE INDEX delivery_attempts_message ON delivery_attempts (order_id, kind, shipment_key, channel);

-- Messages of the first version were email only: a sent one keeps its state as an email delivery; one not
-- sent yet is planned again, for every channel.
UPDATE messages SET planned_at = created_at WHERE status = 'sent';
INSERT INTO deliveries (order_id, kind, shipment_key, channel, status, attempts, sent_at)
SELECT order_id, kind, shipment_key, 'email', status, attempts, sent_at FROM messages WHERE status = 'sent';
DROP INDEX messages_pending;
ALTER TABLE messages
    DROP COLUMN channel,
    DROP COLUMN status,
    DROP COLUMN attempts,
    DROP COLUMN last_error,
    DROP COLUMN next_try_at,
    DROP COLUMN sent_at;
