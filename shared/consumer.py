"""The consuming half of the backbone, the same for every service.

Records are read in batches; each batch is decoded, undecodable records go to the dead-letter topic,
the rest are handled in ONE database transaction together with the claim of their event ids (so a
redelivered event changes nothing), and only after that commit are the offsets committed. A transient
failure (database or broker down, deadlock) retries the batch with backoff; any other failure isolates
the records one by one and dead-letters the one that fails, so a poison message never blocks a partition.
Metrics of handled records move only once their transaction commits; each record's ids are bound to the
log context while it is handled; after every poll the lag of each assigned partition is reported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared import aftercommit, inbox, kafka_access, logs
from shared.db import TRANSIENT_DB_ERRORS, Conn
from shared.kafka import DeadLetters, Inbound, Undecodable, decode
from shared.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    HANDLER_SECONDS,
    MESSAGES_CONSUMED,
    TRANSIENT_RETRIES,
    count,
    observe,
)
from shared.settings import CommonSettings

log = logging.getLogger(__name__)
Handler = Callable[[Conn, Inbound], Awaitable[None]]
# Runs first in a batch's transaction with the batch's new records, e.g. to take row locks in one global order.
BatchPreparation = Callable[[Conn, list[Inbound]], Awaitable[None]]
TRANSIENT = (*TRANSIENT_DB_ERRORS, KafkaError)


class EventConsumer:
    def __init__(
        self,
        settings: CommonSettings,
        pool: asyncpg.Pool,
        dead_letters: DeadLetters,
        handlers: Mapping[str, Handler],
        prepare: BatchPreparation | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.dead_letters = dead_letters
        self.handlers = dict(handlers)
        self.prepare = prepare
        self.service = settings.service
        self.assigned = False
        self._lag_reported: set[TopicPartition] = set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.handlers,
            **kafka_access.of_service(self.settings).client_options(),
            group_id=f"oms-{self.service}",
            client_id=f"oms-{self.service}-{self.settings.instance}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.consumer_batch_size,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(
                    timeout_ms=self.settings.consumer_poll_ms, max_records=self.settings.consumer_batch_size
                )
                self.assigned = bool(consumer.assignment())
                if batches:
                    await self._process(consumer, batches)
                await self._report_lag(consumer)
        finally:
            await consumer.stop()

    async def _process(self, consumer: AIOKafkaConsumer, batches: Mapping[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        started = time.perf_counter()
        decoded: list[Inbound] = []
        poison: list[Undecodable] = []
        for records in batches.values():
            for record in records:
                item = decode(record, self.settings.max_body_bytes)
                (decoded if isinstance(item, Inbound) else poison).append(item)  # type: ignore[arg-type]
        if poison:
            await self._retry_transient(lambda: self.dead_letters.send(poison))
            for item in poison:
                log.warning("dead-lettered %s: %s", item.origin, item.reason)
                MESSAGES_CONSUMED.labels(self.service, item.origin.topic, "dead_lettered").inc()
        if decoded:
            try:
                await self._retry_transient(lambda: self._apply(decoded))
            except Exception:
                log.exception("batch of %d failed; isolating records", len(decoded))
                for item in decoded:
                    await self._apply_or_dead_letter(item)
        BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        if self.settings.fault_kill_after_db_commit:
            log.warning("fault injection: SIGKILL after database commit, before offset commit")
            os.kill(os.getpid(), signal.SIGKILL)
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Partitions moved to another instance mid-batch; it will redeliver, and the inbox makes that harmless.
            log.warning("offset commit refused after rebalance (%s)", exc.__class__.__name__)

    async def _apply(self, items: list[Inbound]) -> None:
        async with self.pool.acquire() as conn, aftercommit.transaction(conn):
            fresh = await inbox.claim(conn, (i.event_id for i in items))
            if self.prepare is not None:
                await self.prepare(conn, [i for i in items if i.event_id in fresh])
            for item in items:
                if item.event_id in fresh:
                    fresh.discard(item.event_id)  # a duplicate within the batch counts once
                    with logs.bound(**record_ids(item)):
                        started = time.perf_counter()
                        await self.handlers[item.topic](conn, item)
                        observe(HANDLER_SECONDS.labels(self.service, item.topic), time.perf_counter() - started)
                        log.debug("handled %s from %s", item.envelope.type, item.origin)
                    count(MESSAGES_CONSUMED.labels(self.service, item.topic, "processed"))
                else:
                    count(MESSAGES_CONSUMED.labels(self.service, item.topic, "duplicate"))

    async def _apply_or_dead_letter(self, item: Inbound) -> None:
        try:
            await self._retry_transient(lambda: self._apply([item]))
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else ""
            with logs.bound(**record_ids(item)):
                log.error("dead-lettering %s: handler failed with %s", item.origin, exc.__class__.__name__)
            failed = Undecodable(item.origin, f"handler failed: {exc.__class__.__name__}: {detail}")
            await self._retry_transient(lambda: self.dead_letters.send([failed]))
            MESSAGES_CONSUMED.labels(self.service, item.topic, "dead_lettered").inc()

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Per assigned partition: records not yet fetched, from this consumer's own positions (no broker
        round trip). Partitions that moved to another instance stop being reported here."""
        reported: set[TopicPartition] = set()
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:  # no fetch response for it yet
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked since assignment() was read
                continue
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(max(0, highwater - position))
            reported.add(tp)
        for tp in self._lag_reported - reported:
            CONSUMER_LAG.remove(self.service, tp.topic, str(tp.partition))
        self._lag_reported = reported

    async def _retry_transient(self, action: Callable[[], Awaitable[None]]) -> None:
        attempt = 0
        while True:
            try:
                await action()
                return
            except TRANSIENT as exc:
                attempt += 1
                TRANSIENT_RETRIES.labels(self.service).inc()
                delay = min(10.0, 0.05 * 2**attempt) * (0.5 + random.random())
                log.warning("transient failure (%s), retry %d in %.2fs", exc.__class__.__name__, attempt, delay)
                await asyncio.sleep(delay)


def record_ids(item: Inbound) -> dict[str, UUID | None]:
    envelope = item.envelope
    return {"order_id": envelope.order_id, "event_id": envelope.event_id, "correlation_id": envelope.correlation_id}
