-- Who to tell about an order (from the capture events); kept apart from the messages themselves.
CREATE TABLE contacts (
    order_id uuid PRIMARY KEY,
    email    text NOT NULL,
    name     text NOT NULL
);

-- One customer message per (order, kind): the primary key is what makes redelivery harmless.
CREATE TABLE messages (
    order_id    uuid NOT NULL,
    kind        text NOT NULL,
    channel     text NOT NULL DEFAULT 'email',
    facts       jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    next_try_at timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    PRIMARY KEY (order_id, kind)
);
CREATE INDEX messages_pending ON messages (next_try_at) WHERE status = 'pending';

CREATE TRIGGER messages_notify AFTER INSERT ON messages FOR EACH STATEMENT EXECUTE FUNCTION notify_dispatcher();
