"""The dead-letter path: records a service cannot process are set aside with their reason and origin, and
this path itself cannot fail on the record.

A dead letter goes to the service's dead-letter topic: the original key, value and headers plus `dlq.*`
headers (reason, origin, service, time). When that copy cannot go there for good (larger than the broker
takes once the headers are added, or refused, e.g. not authorised), the original is stored in the service's
`dead_letters` table instead, and a small pointer record (`dlq.stored`) is published when the broker takes
it. `oms dlq list` and `oms dlq replay` read both. Only an unavailable broker or database makes `send`
raise: the caller waits and calls again, and a repeat is harmless (one table row per origin; a second copy
in the topic replays as a duplicate the inbox skips).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.backbone.failures import Failure, classify, describe
from shared.backbone.kafka import MAX_REASON_CHARS, Origin, Undecodable
from shared.backbone.metrics import DEAD_LETTERS, DEAD_LETTERS_STORED, MESSAGES_PRODUCED
from shared.contracts.envelope import now
from shared.contracts.topics import dead_letter_topic

log = logging.getLogger(__name__)
RecordHeaders = list[tuple[str, bytes | None]]
STORED = "dlq.stored"
UNREADABLE = "dlq.unreadable"


def sendable_key(origin: Origin) -> bytes | None:
    """The original key; an empty one when the record has neither key nor value (a record the client could
    not read, a keyless tombstone), which the producer would refuse to send."""
    return origin.key if origin.key is not None or origin.value is not None else b""


def record_bytes(key: bytes | None, value: bytes | None, headers: RecordHeaders) -> int:
    """What the record takes in a batch on the wire: the size the producer and the broker check."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


class DeadLetters:
    def __init__(
        self,
        service: str,
        producer: AIOKafkaProducer,
        pool: asyncpg.Pool,
        *,
        max_record_bytes: int,
        send_timeout: float,
    ) -> None:
        self.service = service
        self.topic = dead_letter_topic(service)
        self.producer = producer
        self.pool = pool
        self.max_record_bytes = max_record_bytes
        self.send_timeout = send_timeout

    def headers(self, item: Undecodable) -> RecordHeaders:
        origin = item.origin
        return [
            *[(k, v) for k, v in origin.headers if not k.startswith("dlq.")],
            ("dlq.reason", item.reason[:MAX_REASON_CHARS].encode()),
            ("dlq.origin.topic", origin.topic.encode()),
            ("dlq.origin.partition", str(origin.partition).encode()),
            ("dlq.origin.offset", str(origin.offset).encode()),
            ("dlq.origin.timestamp", str(origin.timestamp).encode()),
            ("dlq.service", self.service.encode()),
            ("dlq.failed_at", now().isoformat().encode()),
            *([(UNREADABLE, b"true")] if item.unreadable else []),
        ]

    async def send(self, items: Sequence[Undecodable]) -> None:
        to_store: list[tuple[Undecodable, str]] = []
        to_publish: list[tuple[Undecodable, RecordHeaders]] = []
        for item in items:
            headers = self.headers(item)
            size = record_bytes(item.origin.key, item.origin.value, headers)
            if size > self.max_record_bytes:
                to_store.append((item, f"{size} bytes with the dead-letter headers, limit {self.max_record_bytes}"))
            else:
                to_publish.append((item, headers))
        outcomes = await self._publish(to_publish)
        for (item, _), outcome in zip(to_publish, outcomes, strict=True):
            if outcome is None:
                DEAD_LETTERS.labels(self.service, item.origin.topic).inc()
                MESSAGES_PRODUCED.labels(self.service, self.topic).inc()
            elif classify(outcome) is Failure.PERMANENT:
                to_store.append((item, f"the dead-letter topic refused it: {describe(outcome)}"))
            else:
                raise outcome
        if to_store:
            await self._store(to_store)

    async def _publish(self, items: list[tuple[Undecodable, RecordHeaders]]) -> list[BaseException | None]:
        """Each record's outcome: None once the broker has it durably (before its origin offset may be
        committed), else the error; waits at most the send timeout."""
        outcomes: list[BaseException | None] = [None] * len(items)
        waiting: dict[int, asyncio.Future[object]] = {}
        for i, (item, headers) in enumerate(items):
            try:  # the producer refuses some records at once (e.g. too large), others when the broker answers
                waiting[i] = await self.producer.send(
                    self.topic, item.origin.value, key=sendable_key(item.origin), headers=headers
                )
            except Exception as exc:
                outcomes[i] = exc
        if waiting:
            results = await asyncio.wait_for(
                asyncio.gather(*waiting.values(), return_exceptions=True), self.send_timeout
            )
            for i, result in zip(waiting, results, strict=True):
                if isinstance(result, BaseException):
                    outcomes[i] = result
        return outcomes

    async def _store(self, items: list[tuple[Undecodable, str]]) -> None:
        """Keep the originals in the service's own table, then point at them from the topic if it takes it."""
        pointers: list[tuple[Undecodable, int]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for item, why in items:
                origin = item.origin
                reason = f"{item.reason[:MAX_REASON_CHARS]} (kept in {self.service}.dead_letters: {why})"
                row_id = await conn.fetchval(
                    "INSERT INTO dead_letters (origin_topic, origin_partition, origin_offset, origin_timestamp,"
                    " key, value, header_keys, header_values, reason, unreadable)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    " ON CONFLICT (origin_topic, origin_partition, origin_offset, origin_timestamp)"
                    " DO UPDATE SET reason = EXCLUDED.reason RETURNING id",
                    origin.topic,
                    origin.partition,
                    origin.offset,
                    origin.timestamp,
                    origin.key,
                    origin.value,
                    [k.encode() for k, _ in origin.headers],
                    [v for _, v in origin.headers],
                    reason.replace("\x00", "\\0"),  # text columns take no NUL
                    item.unreadable,
                )
                pointers.append((Undecodable(origin, reason, item.unreadable), row_id))
        for item, row_id in pointers:
            DEAD_LETTERS.labels(self.service, item.origin.topic).inc()
            DEAD_LETTERS_STORED.labels(self.service, item.origin.topic).inc()
            log.error(
                "dead letter from %s kept in %s.dead_letters #%d: %s", item.origin, self.service, row_id, item.reason
            )
        await self._point_to(pointers)

    async def _point_to(self, stored: list[tuple[Undecodable, int]]) -> None:
        """A small record in the dead-letter topic per stored original, so the topic alone shows every dead
        letter; best effort: the table row is what keeps the record."""
        try:
            futures = [
                await self.producer.send(
                    self.topic,
                    None,
                    key=sendable_key(item.origin) if len(item.origin.key or b"") <= 1024 else b"",
                    headers=[
                        *[(k, v) for k, v in self.headers(item) if k.startswith("dlq.")],
                        (STORED, f"{self.service}.dead_letters:{row_id}".encode()),
                    ],
                )
                for item, row_id in stored
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self.send_timeout)
        except Exception as exc:
            log.warning("pointers to %d stored dead letters not published (%s)", len(stored), describe(exc))
