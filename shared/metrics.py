"""Prometheus metrics of the backbone, named oms_<noun>_<unit>; labels are bounded (topic, outcome, service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "oms_messages_consumed_total", "Records read from Kafka by outcome.", ["service", "topic", "outcome"]
)
MESSAGES_PRODUCED = Counter("oms_messages_produced_total", "Records published to Kafka.", ["service", "topic"])
DEAD_LETTERS = Counter(
    "oms_dead_letters_total", "Records sent to the dead-letter topic, by origin topic.", ["service", "topic"]
)
BATCH_SECONDS = Histogram(
    "oms_consumer_batch_duration_seconds",
    "Time to handle one consumed batch, from decode to database commit.",
    ["service"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRANSIENT_RETRIES = Counter(
    "oms_transient_retries_total",
    "Batches retried after a transient failure (database or broker).",
    ["service"],
)
OUTBOX_BACKLOG = Gauge("oms_outbox_backlog_events", "Events in the outbox not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge("oms_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event.", ["service"])
