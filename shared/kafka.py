"""Kafka plumbing: the idempotent producer, decoding records into envelopes, and the dead-letter path."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Self
from uuid import UUID

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from shared import events as ev
from shared import kafka_access
from shared.envelope import Envelope, from_external, now
from shared.metrics import DEAD_LETTERS, MESSAGES_PRODUCED
from shared.settings import CommonSettings
from shared.topics import BY_NAME, dead_letter_topic

MAX_REASON_CHARS = 1000


def make_producer(settings: CommonSettings) -> AIOKafkaProducer:
    # Idempotence forces acks=all: a broker retry never writes a record twice.
    return AIOKafkaProducer(
        **kafka_access.of_service(settings).client_options(),
        client_id=f"oms-{settings.service}-{settings.instance}",
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


@dataclass(frozen=True)
class Origin:
    """Where a record was read, and its raw bytes (kept for the dead-letter topic)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, record: Any) -> Self:
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            tuple(record.headers or ()),
        )

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


@dataclass(frozen=True)
class Inbound:
    """A decoded record: its origin, its envelope and its typed payload."""

    origin: Origin
    envelope: Envelope
    payload: ev.Contract

    @property
    def topic(self) -> str:
        return self.origin.topic

    @property
    def event_id(self) -> UUID:
        return self.envelope.event_id


@dataclass(frozen=True)
class Undecodable:
    origin: Origin
    reason: str


def validation_reason(error: ValidationError) -> str:
    """The schema errors as `field.path: message`, without the offending values (they may be personal data)."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    ]
    return "; ".join(parts)[:MAX_REASON_CHARS]


def _header(headers: tuple[tuple[str, bytes], ...], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


def decode(record: Any, max_bytes: int) -> Inbound | Undecodable:
    """Turn a consumed record into an Inbound, or say precisely why it cannot be."""
    origin = Origin.of(record)
    headers = origin.headers

    def bad(reason: str) -> Undecodable:
        return Undecodable(origin, reason)

    topic = BY_NAME.get(record.topic)
    if topic is None:
        return bad(f"no contract registered for topic {record.topic}")
    if record.value is None:
        return bad("empty record (tombstone)")
    if len(record.value) > max_bytes:
        return bad(f"oversized: {len(record.value)} bytes, limit {max_bytes}")
    try:
        document = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return bad(f"not JSON: {exc.__class__.__name__} at position {getattr(exc, 'pos', '?')}")
    try:
        if topic.external:
            payload = topic.payloads[0].model_validate(document)
            header_id = _header(headers, "event_id")
            envelope = from_external(
                payload,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_id=UUID(header_id) if header_id else None,
            )
        else:
            envelope = Envelope.model_validate(document)
            payload = envelope.decode()
            if not isinstance(payload, topic.payloads):
                return bad(f"event type {envelope.type} does not belong on {record.topic}")
    except ValidationError as exc:
        return bad(f"schema: {validation_reason(exc)}")
    except ValueError as exc:
        return bad(f"schema: {str(exc)[:MAX_REASON_CHARS]}")
    return Inbound(origin, envelope, payload)


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


class DeadLetters:
    """Publishes records a service cannot process to its dead-letter topic, reason and origin in the headers."""

    def __init__(self, service: str, producer: AIOKafkaProducer) -> None:
        self.service = service
        self.topic = dead_letter_topic(service)
        self.producer = producer

    async def send(self, items: list[Undecodable]) -> None:
        futures = []
        for item in items:
            origin = item.origin
            headers = [
                *[(k, v) for k, v in origin.headers if not k.startswith("dlq.")],
                ("dlq.reason", item.reason[:MAX_REASON_CHARS].encode()),
                ("dlq.origin.topic", origin.topic.encode()),
                ("dlq.origin.partition", str(origin.partition).encode()),
                ("dlq.origin.offset", str(origin.offset).encode()),
                ("dlq.service", self.service.encode()),
                ("dlq.failed_at", now().isoformat().encode()),
            ]
            futures.append(await self.producer.send(self.topic, origin.value, key=origin.key, headers=headers))
            DEAD_LETTERS.labels(self.service, origin.topic).inc()
        # Durable on the broker before the origin offset may be committed.
        await asyncio.gather(*futures)
        MESSAGES_PRODUCED.labels(self.service, self.topic).inc(len(items))
