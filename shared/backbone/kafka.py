"""Kafka plumbing: the idempotent producer, and decoding records into envelopes (or a reason why not)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from shared.backbone import kafka_access, partitioning
from shared.backbone.closed_connections import guard_closed_connections
from shared.backbone.offsets import guard_offset_fetch
from shared.backbone.settings import CommonSettings
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope, EnvelopeHead, external_event_id, from_external, opened
from shared.contracts.topics import BY_NAME, Topic

MAX_REASON_CHARS = 1000
P_co = TypeVar("P_co", bound=ev.Contract, covariant=True)


def guard_client() -> None:
    """aiokafka's known faults mended for this process, before any of its clients starts: committed offsets read
    back only when the broker has them (shared.offsets), and a connection the broker closed reconnected to, also
    on uvloop (shared.closed_connections). Later calls do nothing."""
    guard_offset_fetch()
    guard_closed_connections()


async def partitions(admin: AIOKafkaAdminClient, names: Iterable[str] | None = None) -> list[TopicPartition]:
    """The topics' partitions as the broker describes them to this client (every topic's when no names are given;
    a topic it does not describe, as one the client may not see, is left out)."""
    described = await admin.describe_topics(list(names) if names is not None else None)
    return sorted(
        TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"] for p in t["partitions"]
    )


def make_producer(settings: CommonSettings) -> AIOKafkaProducer:
    # Idempotence forces acks=all: a broker retry never writes a record twice.
    return AIOKafkaProducer(
        **kafka_access.of_service(settings).client_options(),
        client_id=f"oms-{settings.service}-{settings.instance}",
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=256 * 1024,
        partitioner=partitioning.by_key,
        request_timeout_ms=30_000,
    )


Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Origin:
    """Where a record was read, and its raw bytes (kept for the dead-letter topic)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int = -1  # milliseconds, as the broker stores it with the record

    @classmethod
    def of(cls, record: Any) -> Self:
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            tuple(record.headers or ()),
            record.timestamp,
        )

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def header(self, name: str) -> str | None:
        """A header for display: absent or null is None, bytes that are not UTF-8 are replaced."""
        for key, value in self.headers:
            if key == name:
                return None if value is None else value.decode("utf-8", "replace")
        return None

    def derived_event_id(self) -> UUID:
        """The event id of a bare record that came without one (see shared.envelope.external_event_id)."""
        return external_event_id(self.topic, self.partition, self.offset, self.timestamp, self.key, self.value)


@dataclass(frozen=True)
class Inbound(Generic[P_co]):
    """A decoded record: its origin, its envelope and its typed payload."""

    origin: Origin
    envelope: EnvelopeHead
    payload: P_co

    @property
    def topic(self) -> str:
        return self.origin.topic

    @property
    def event_id(self) -> UUID:
        return self.envelope.event_id


@dataclass(frozen=True)
class Undecodable:
    """A record that cannot be processed, and why. `unreadable`: the Kafka client could not even parse it, so
    its origin is known but not its content (it stays on its topic until the topic's retention removes it)."""

    origin: Origin
    reason: str
    unreadable: bool = False


def validation_reason(error: ValidationError) -> str:
    """The schema errors as `field.path: message`, without the offending values (they may be personal data)."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    ]
    return "; ".join(parts)[:MAX_REASON_CHARS]


EVENT_ID_HEADER = "event_id"


class UnusableHeader(ValueError):
    """A header the record needs is null or not text."""


def header_text(headers: Headers, name: str) -> str | None:
    """A header's value as strict UTF-8 text, None when absent; a null or non-UTF-8 value is an error."""
    for key, value in headers:
        if key == name:
            if value is None:
                raise UnusableHeader(f"{name} header is null")
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise UnusableHeader(f"{name} header is not UTF-8") from None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def decode(record: Any, max_bytes: int) -> Inbound[ev.Contract] | Undecodable:
    """Turn a consumed record into an Inbound, or say precisely why it cannot be; never raises.

    Whatever the record's bytes, headers, size or nesting, the outcome is a result: a record that made this
    raise would stop its consumer and come back after every restart."""
    origin = Origin.of(record)
    try:
        return _decode(origin, max_bytes)
    except Exception as exc:  # anything unforeseen about the bytes still gets a reason, not a dead consumer
        return Undecodable(origin, f"cannot decode: {exc.__class__.__name__}"[:MAX_REASON_CHARS])


def _decode(origin: Origin, max_bytes: int) -> Inbound[ev.Contract] | Undecodable:
    def bad(reason: str) -> Undecodable:
        return Undecodable(origin, reason[:MAX_REASON_CHARS])

    topic = BY_NAME.get(origin.topic)
    if topic is None:
        return bad(f"no contract registered for topic {origin.topic}")
    if origin.value is None:
        return bad("empty record (tombstone)")
    if len(origin.value) > max_bytes:
        return bad(f"oversized: {len(origin.value)} bytes, limit {max_bytes}")
    return _decode_valid(origin, topic, origin.value) or _explained(origin, topic, origin.value)


def _explained(origin: Origin, topic: Topic, value: bytes) -> Inbound[ev.Contract] | Undecodable:
    """The record decoded step by step (JSON, then the envelope, then the payload), so that a record that is not
    valid gets the precise reason why."""

    def bad(reason: str) -> Undecodable:
        return Undecodable(origin, reason[:MAX_REASON_CHARS])

    try:
        document = json.loads(value)
    except RecursionError:
        return bad("not JSON: nested too deeply")
    except json.JSONDecodeError as exc:
        return bad(f"not JSON: JSONDecodeError at position {exc.pos}")
    except ValueError as exc:  # not UTF-8, or a number too long to convert
        return bad(f"not JSON: {exc.__class__.__name__}: {_first_line(exc)}")
    try:
        envelope, payload = _contents(
            origin, topic, lambda: topic.parse_bare(document), lambda: _decoded(Envelope.model_validate(document))
        )
        if not isinstance(payload, topic.payloads):
            return bad(f"event type {envelope.type} does not belong on {origin.topic}")
    except UnusableHeader as exc:
        return bad(str(exc))
    except ValidationError as exc:
        return bad(f"schema: {validation_reason(exc)}")
    except RecursionError:
        return bad("schema: nested too deeply")
    except ValueError as exc:
        return bad(f"schema: {_first_line(exc)}")
    return Inbound(origin, envelope, payload)


def _decode_valid(origin: Origin, topic: Topic, value: bytes) -> Inbound[ev.Contract] | None:
    """A valid record's contents, parsed and validated in one pass from its bytes (pydantic's own JSON parser:
    decoding was a fifth of a consumer's time); None for any record that is not valid, whose reason the
    step-by-step path works out."""
    try:
        envelope, payload = _contents(origin, topic, lambda: topic.parse_bare_json(value), lambda: opened(topic, value))
    except (ValueError, RecursionError):  # ValidationError and UnusableHeader among them
        return None
    return Inbound(origin, envelope, payload) if isinstance(payload, topic.payloads) else None


def _contents(
    origin: Origin,
    topic: Topic,
    bare: Callable[[], ev.Contract],
    enveloped: Callable[[], tuple[EnvelopeHead, ev.Contract]],
) -> tuple[EnvelopeHead, ev.Contract]:
    """The envelope and payload of a record: an outside party's bare contract (`bare`), given an envelope with the
    event id of its header or one derived from the record, or a service's envelope and its payload (`enveloped`)."""
    if topic.external:
        payload = bare()
        event_id = _event_id_header(origin) or origin.derived_event_id()
        return from_external(payload, event_id=event_id, producer=origin.topic), payload
    return enveloped()


def _decoded(envelope: Envelope) -> tuple[EnvelopeHead, ev.Contract]:
    return envelope, envelope.decode()


def _event_id_header(origin: Origin) -> UUID | None:
    text = header_text(origin.headers, EVENT_ID_HEADER)
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        raise UnusableHeader(f"{EVENT_ID_HEADER} header is not a UUID") from None


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()
