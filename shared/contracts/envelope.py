"""The envelope around every event the services publish: identity, causality and the versioned payload."""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from shared.contracts import events as ev
from shared.contracts.ids import time_ordered_id
from shared.contracts.topics import BY_NAME, TOPICS, Topic, topic_of

PAYLOAD_TYPES: dict[str, type[ev.Contract]] = {cls.event_type: cls for topic in TOPICS for cls in topic.payloads}
# Ids of events that arrive without one (bare contract JSON from outside) derive from the record itself,
# so a redelivery of the same record gets the same id (external_event_id).
EXTERNAL_EVENT_NAMESPACE = UUID("5b0f3f1e-8c1c-4d8e-9a53-6f0c2b1d7e41")


def now() -> datetime:
    return datetime.now(UTC)


class EnvelopeHead(BaseModel):
    """An envelope's identity and causality: what a reader keeps of a record's envelope once its payload is
    decoded (the cause of what it publishes in turn), and what a bare record from outside is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    type: str
    version: int
    occurred_at: datetime
    order_id: UUID | None = None
    correlation_id: UUID
    causation_id: UUID | None = None
    producer: str


class Envelope(EnvelopeHead):
    payload: dict[str, Any]

    def decode(self) -> ev.Contract:
        model = PAYLOAD_TYPES.get(self.type)
        if model is None:
            raise ValueError(f"unknown event type {self.type!r}")
        if self.version > model.version:
            raise ValueError(f"{self.type} version {self.version} is newer than this service knows ({model.version})")
        return model.model_validate(self.payload)


def wrap(
    payload: ev.Contract,
    *,
    order_id: UUID | None = None,
    cause: EnvelopeHead | None = None,
    occurred_at: datetime | None = None,
    producer: str | None = None,
) -> Envelope:
    """The event in its envelope; its producer is the writer of its topic (tests may stand in for another)."""
    event_id = time_ordered_id()
    return Envelope(
        event_id=event_id,
        type=payload.event_type,
        version=payload.version,
        occurred_at=occurred_at or now(),
        order_id=order_id,
        correlation_id=cause.correlation_id if cause else event_id,
        causation_id=cause.event_id if cause else None,
        producer=producer or topic_of(type(payload)).writer,
        payload=payload.model_dump(mode="json"),
    )


def external_event_id(
    topic: str, partition: int, offset: int, timestamp: int, key: bytes | None, value: bytes | None
) -> UUID:
    """The id of a bare record that came without one, the same at every redelivery of that record.

    Its position names it only within one life of the topic: a topic deleted and created again starts its
    offsets at 0, and a position-only id would make its new records look like ones already processed.
    The record's timestamp (as the broker stores it, milliseconds) and a digest of its key and value tell
    the lives apart; none of them changes when the same stored record is delivered again."""
    digest = hashlib.sha256()
    for part in (key, value):  # length-prefixed, so that no key and an empty key differ
        digest.update(b"-" if part is None else b"+" + len(part).to_bytes(8, "big") + part)
    return uuid.uuid5(EXTERNAL_EVENT_NAMESPACE, f"{topic}/{partition}/{offset}/{timestamp}/{digest.hexdigest()}")


def from_external(payload: ev.Contract, *, event_id: UUID, producer: str) -> EnvelopeHead:
    """The head of an envelope for a bare record written by an outside party (the producer named by its topic)."""
    return EnvelopeHead(
        event_id=event_id,
        type=payload.event_type,
        version=payload.version,
        occurred_at=now(),
        correlation_id=event_id,
        producer=producer,
    )


def opened(topic: Topic, value: bytes) -> tuple[EnvelopeHead, ev.Contract]:
    """A service's record on `topic`, its envelope and payload parsed and validated in one pass from its bytes.
    Raises ValidationError for whatever reading it step by step (`Envelope`, then `Envelope.decode`) refuses, or
    finds not to belong on the topic; that reading says why.

    Read as an envelope and then its payload, the payload went through Python objects twice: half the time to
    decode a service's record (docs/benchmarks/findings.md, round 25)."""
    parsed = _sealed(topic.name).validate_json(value)
    return parsed, parsed.payload


@functools.cache
def _sealed(topic_name: str) -> TypeAdapter[Any]:
    """The envelopes a topic carries, each typed by its payload's contract: its type names the contract, and a
    version newer than the contract's is refused."""
    topic = BY_NAME[topic_name]
    sealed = [
        create_model(
            f"{payload.__name__}Envelope",
            __base__=EnvelopeHead,
            type=(Literal[payload.event_type], ...),  # type: ignore[arg-type]  # the event type is known when run
            version=(Annotated[int, Field(le=payload.version)], ...),
            payload=(payload, ...),
        )
        for payload in topic.payloads
    ]
    if len(sealed) == 1:
        return TypeAdapter(sealed[0])
    return TypeAdapter(Annotated[Union[tuple(sealed)], Field(discriminator="type")])  # type: ignore[arg-type]  # noqa: UP007
