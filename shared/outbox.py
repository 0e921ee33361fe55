"""The transactional outbox: events are written with the state change, then a relay publishes them.

One relay per service publishes at a time (an advisory lock), so events leave in the order they were
written; other instances stand by. A trigger NOTIFYs at commit to wake the relay (shared.dispatch).
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.db import Conn
from shared.dispatch import run_dispatch
from shared.envelope import Envelope
from shared.kafka import encode
from shared.metrics import MESSAGES_PRODUCED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from shared.metrics_business import count_emitted
from shared.settings import CommonSettings
from shared.topics import Topic

RELAY_BATCH = 500


async def enqueue(conn: Conn, items: list[tuple[Topic, str, Envelope]]) -> None:
    """Write events to the outbox; call inside the transaction that makes the change they announce.

    The business counters the events stand for (orders allocated, shipped, ...) move when it commits."""
    if items:
        await conn.executemany(
            "INSERT INTO outbox (topic, key, body) VALUES ($1, $2, $3)",
            [(topic.name, key, encode(envelope)) for topic, key, envelope in items],
        )
        for _, _, envelope in items:
            count_emitted(envelope.type, envelope.payload)


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
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('outbox-relay'))"):
                return 0
            rows = await conn.fetch("SELECT id, topic, key, body FROM outbox ORDER BY id LIMIT $1", RELAY_BATCH)
            if rows:
                futures = [await self.producer.send(r["topic"], r["body"], key=r["key"].encode()) for r in rows]
                await asyncio.gather(*futures)  # acknowledged by every in-sync replica before rows go
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
                for row in rows:
                    MESSAGES_PRODUCED.labels(service, row["topic"]).inc()
            backlog, age = await conn.fetchrow(
                "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) FROM outbox"
            ) or (0, 0)
            OUTBOX_BACKLOG.labels(service).set(backlog)
            OUTBOX_OLDEST_AGE.labels(service).set(float(age))
            return len(rows)
