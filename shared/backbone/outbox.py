"""The transactional outbox: events are written with the state change, then a relay publishes them.

One relay per service publishes at a time (an advisory lock of its own), so events leave in the order they
were written; other instances stand by. A trigger NOTIFYs at commit to wake the relay (shared.dispatch).
A relay cannot hang holding its lock: the broker's acknowledgement is awaited for at most the send timeout,
and the server ends a transaction left idle longer than that (the pool's idle-in-transaction timeout), so a
stuck relay frees the lock for another instance. An event the broker can never take (larger than its limit)
is set aside in the service's dead_letters table instead of stopping every event behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from shared.backbone.db import Conn
from shared.backbone.dispatch import run_dispatch
from shared.backbone.dlq import record_bytes
from shared.backbone.kafka import encode
from shared.backbone.metrics import (
    DEAD_LETTERS,
    DEAD_LETTERS_STORED,
    MESSAGES_PRODUCED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
)
from shared.backbone.settings import CommonSettings
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic

log = logging.getLogger(__name__)
RELAY_BATCH = 500
# What the broker refuses about the record itself: no retry can change that.
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


async def enqueue(conn: Conn, items: list[tuple[Topic, str, Envelope]]) -> None:
    """Write events to the outbox; call inside the transaction that makes the change they announce."""
    if items:
        # One statement for all, ids given in the order written (the relay publishes in id order).
        await conn.execute(
            "INSERT INTO outbox (topic, key, body) SELECT topic, key, body"
            " FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS e(topic, key, body, n) ORDER BY n",
            [topic.name for topic, _, _ in items],
            [key for _, key, _ in items],
            [encode(envelope) for _, _, envelope in items],
        )


# The service's relay lock (see lock_relay), by the service's name as $1.
RELAY_LOCK = "hashtext('outbox-relay'), hashtext($1)"
# One round trip: the relay lock, then (if it was free) the oldest rows. The lock is taken once, before any row is
# read, and also when there is none. The relay's own commit does not wait for its WAL to reach the disk: a crash
# can only lose the DELETE, whose rows are then published again, and every reader's inbox ignores a repeat (the
# events keep their ids). Every other write of the pipeline still commits synchronously.
TAKE = f"""
WITH relay AS MATERIALIZED (
    SELECT pg_try_advisory_xact_lock({RELAY_LOCK}) AS mine, set_config('synchronous_commit', 'off', true)
)
SELECT relay.mine, o.id, o.topic, o.key, o.body, o.created_at
FROM relay LEFT JOIN LATERAL (SELECT * FROM outbox WHERE relay.mine ORDER BY id LIMIT $2) AS o ON true
ORDER BY o.id
"""


# The relay's statements never scan the whole outbox. An outbox is a queue: nearly empty whenever it is vacuumed
# or analyzed, tens of thousands of rows published and not yet vacuumed away in between (autovacuum comes by about
# once a minute, later when its workers are busy elsewhere). A plan made while it was empty (a sequential scan, the
# cheapest then) is kept by the prepared statement, and then reads every one of those rows each round. Through the
# indexes a published row costs an index entry passed over: the relays' reads and deletes took 0.8 s of a minute at
# 200 orders/s against 10.0 s with autovacuum kept off the outboxes, 1.0 s against 3.7-6.3 s with it on
# (docs/benchmarks/findings.md, round 40).
INDEXES_ONLY = "SET LOCAL enable_seqscan = off"
# The read's snapshot is given up before the broker is waited for. asyncpg runs a statement with parameters as a
# prepared one, and PostgreSQL keeps that read's portal, with its snapshot, until the next statement: a relay waiting
# for acknowledgements (seconds while the broker is slow, up to the send timeout) would meanwhile keep vacuum and
# pruning from every row changed since, in every table of the database, as a long transaction does. A statement of
# the simple protocol closes it; the transaction, its relay lock and its rows stay as they were (READ COMMITTED: the
# delete takes a snapshot of its own). A stopped broker held the three path relays' snapshots for all of its 6 s
# (docs/benchmarks/findings.md, round 41).
RELEASE_SNAPSHOT = "CLOSE ALL"
DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


async def lock_relay(conn: Conn, service: str, *, wait: bool = False) -> bool:
    """Take the service's relay lock for the current transaction (whoever holds it is the one relay publishing
    that service's outbox); with `wait`, block until it is free (e.g. to pause a relay).

    One lock per service, as each service has its own outbox: the services share one database, and a single
    key would let one service's relay (or a hung one) hold up every other service's events. The two-key form
    keeps these locks apart from the single-key ones (the migration lock)."""
    if wait:
        await conn.execute(f"SELECT pg_advisory_xact_lock({RELAY_LOCK})", service)
        return True
    return bool(await conn.fetchval(f"SELECT pg_try_advisory_xact_lock({RELAY_LOCK})", service))


class OutboxRelay:
    def __init__(self, settings: CommonSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer

    async def run(self) -> None:
        await run_dispatch(self.settings, f"{self.settings.db_role}_outbox", self.publish_batch, RELAY_BATCH)

    async def publish_batch(self) -> int:
        service = self.settings.service
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(INDEXES_ONLY)
            taken = await conn.fetch(TAKE, service, RELAY_BATCH)
            if not taken[0]["mine"]:
                return 0  # another instance is the relay
            rows = [row for row in taken if row["id"] is not None]
            if rows:
                await conn.execute(RELEASE_SNAPSHOT)
                too_large = await self._publish(rows)
                if too_large:
                    await self._set_aside(conn, too_large)
                await conn.execute(DELETE_PUBLISHED, [r["id"] for r in rows])
            backlog, age = (0, 0.0)
            # A batch short of full took all that was there: the count (a statement per batch) is only worth it
            # when more may wait.
            if len(rows) == RELAY_BATCH:
                backlog, age = await conn.fetchrow(
                    "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) FROM outbox"
                ) or (0, 0.0)
            OUTBOX_BACKLOG.labels(service).set(backlog)
            OUTBOX_OLDEST_AGE.labels(service).set(float(age))
            return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> list[tuple[asyncpg.Record, str]]:
        """Publish the rows, acknowledged by every in-sync replica within the send timeout; returns those the
        broker can never take, with why. Any other failure raises: the transaction rolls back and the rows are
        published again later (a repeat is harmless, the event ids are kept)."""
        limit = self.settings.kafka_max_record_bytes
        too_large: list[tuple[asyncpg.Record, str]] = []
        sent: list[tuple[asyncpg.Record, asyncio.Future[object]]] = []
        for row in rows:
            key = row["key"].encode()
            size = record_bytes(key, row["body"], [])
            if size > limit:
                too_large.append((row, f"{size} bytes, limit {limit}"))
            else:
                sent.append((row, await self.producer.send(row["topic"], row["body"], key=key)))
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(future for _, future in sent), return_exceptions=True),
            self.settings.kafka_send_timeout_seconds,
        )
        produced: Counter[str] = Counter()
        for (row, _), outcome in zip(sent, outcomes, strict=True):
            if isinstance(outcome, TOO_LARGE):
                too_large.append((row, f"refused by the broker: {outcome.__class__.__name__}"))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                produced[row["topic"]] += 1
        for topic, amount in produced.items():  # once per topic, not per record
            MESSAGES_PRODUCED.labels(self.settings.service, topic).inc(amount)
        return too_large

    async def _set_aside(self, conn: Conn, rows: list[tuple[asyncpg.Record, str]]) -> None:
        """Events the broker can never take, kept as dead letters (origin: the topic, partition -1 and the
        outbox row id) so they can be replayed once the limit is raised; the events behind them go on."""
        service = self.settings.service
        for row, why in rows:
            reason = f"event too large to publish: {why}"
            await conn.execute(
                "INSERT INTO dead_letters (origin_topic, origin_partition, origin_offset, origin_timestamp, key,"
                " value, header_keys, header_values, reason)"
                " VALUES ($1, -1, $2, (extract(epoch FROM $3::timestamptz) * 1000)::bigint, $4, $5, '{}', '{}', $6)"
                " ON CONFLICT DO NOTHING",
                row["topic"],
                row["id"],
                row["created_at"],
                row["key"].encode(),
                row["body"],
                reason,
            )
            log.error(
                "outbox event %d for %s set aside in %s.dead_letters: %s", row["id"], row["topic"], service, reason
            )
            DEAD_LETTERS.labels(service, row["topic"]).inc()
            DEAD_LETTERS_STORED.labels(service, row["topic"]).inc()
