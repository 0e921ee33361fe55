"""The backbone every service runs on: consuming, the inbox, the outbox relay, dead letters, the database,
Kafka access, settings, logs, metrics, HTTP authentication. It knows no event type and no business rule."""
