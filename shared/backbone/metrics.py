"""Prometheus metrics of the backbone, named oms_<noun>_<unit>; labels are bounded (service, topic, partition,
outcome, state). `count` and `observe` defer to the commit of the enclosing transaction (shared.aftercommit),
so only work that committed is counted."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from shared.backbone.aftercommit import after_commit

# The `_created` timestamp series double every counter's output and no query here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

MESSAGES_CONSUMED = Counter(
    "oms_messages_consumed_total", "Records read from Kafka by outcome.", ["service", "topic", "outcome"]
)
MESSAGES_PRODUCED = Counter("oms_messages_produced_total", "Records published to Kafka.", ["service", "topic"])
DEAD_LETTERS = Counter(
    "oms_dead_letters_total", "Records set aside as dead letters, by origin topic.", ["service", "topic"]
)
DEAD_LETTERS_STORED = Counter(
    "oms_dead_letters_stored_total",
    "Dead letters kept in the service's dead_letters table because the dead-letter topic could not take them.",
    ["service", "topic"],
)
BATCH_SECONDS = Histogram(
    "oms_consumer_batch_duration_seconds",
    "Time to handle one consumed batch, from decode to database commit.",
    ["service"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HANDLER_SECONDS = Histogram(
    "oms_handler_duration_seconds",
    "Time one handler took for the records of a batch it was handed at once, inside the batch's transaction;"
    " committed work only.",
    ["service", "handler"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
TRANSIENT_RETRIES = Counter(
    "oms_transient_retries_total",
    "Work retried after a transient failure, by kind: unavailable (database or broker down) or contention.",
    ["service", "kind"],
)
UNREADABLE_RECORDS = Counter(
    "oms_unreadable_records_total",
    "Records the Kafka client could not parse (e.g. a header name that is not UTF-8), set aside by offset.",
    ["service", "topic"],
)
INBOX_PRUNED = Counter(
    "oms_inbox_pruned_events_total", "Processed event ids removed from the inbox after the retention.", ["service"]
)
CONSUMER_LAG = Gauge(
    "oms_consumer_lag_messages",
    "Records on an assigned partition not yet fetched by this consumer: high watermark minus position (for a"
    " partition paused at a peak, its end asked of the broker, since a paused partition is not fetched); brought"
    " up to date at most once a second.",
    ["service", "topic", "partition"],
)
ORDER_PATH_BACKLOG = Gauge(
    "oms_order_path_backlog_messages",
    "Records the order path's consumer groups have to read by the next look (those unread, and those arriving"
    " meanwhile at the latest pace), with the orders waiting at capture's HTTP intake, as this service last saw them.",
    ["service"],
)
YIELDING_TO_THE_ORDER_PATH = Gauge(
    "oms_yielding_to_the_order_path",
    "1 while this service's follow-up consumer pauses what can wait, the order path being behind.",
    ["service"],
)
YIELDED_TO_THE_ORDER_PATH = Counter(
    "oms_yielded_to_the_order_path_seconds",
    "Seconds this service's follow-up consumer paused what can wait for the order path (its rate: the share of the"
    " time, which a scrape of the gauge above can miss).",
    ["service"],
)
OUTBOX_BACKLOG = Gauge("oms_outbox_backlog_events", "Events in the outbox not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge("oms_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event.", ["service"])
DB_POOL_CONNECTIONS = Gauge(
    "oms_db_pool_connections",
    "Database connections of the service's pool, by state (in_use, idle).",
    ["service", "state"],
)
EVENT_LOOP_HELD = Histogram(
    "oms_event_loop_held_seconds",
    "How late a timer fired on the service's event loop: the time something held the loop (a handler's Python work,"
    " a collection) while every other task of the service (consumers, relay, HTTP requests) waited.",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
OLDEST_SNAPSHOT = Gauge(
    "oms_db_oldest_snapshot_seconds",
    "How long the oldest snapshot open on the service's database has been held, as the service saw it (a session's"
    " snapshot or its open transaction once it has written, a standby's feedback or replication slot, a prepared"
    " transaction): while it is open no row version replaced or deleted since can be removed, and every outbox and"
    " much-updated row gets slower to read (shared/backbone/snapshots.py).",
    ["service"],
)
DB_POOL_MAX = Gauge("oms_db_pool_max_connections", "Most connections the service's pool may open.", ["service"])


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Observable(Protocol):
    def observe(self, amount: float) -> None: ...


def count(metric: _Incrementable, amount: float = 1) -> None:
    """Increment once the enclosing transaction commits (at once outside one)."""
    after_commit(lambda: metric.inc(amount))


def observe(metric: _Observable, value: float) -> None:
    """Observe once the enclosing transaction commits (at once outside one)."""
    after_commit(lambda: metric.observe(value))
