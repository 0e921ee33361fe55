"""Records that cannot be processed are recognised with a precise reason, never an exception."""

import json
import uuid
from dataclasses import dataclass

import pytest

from shared.backbone.kafka import Inbound, Undecodable, decode, encode
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document


@dataclass
class Record:
    topic: str
    value: bytes | None
    partition: int = 0
    offset: int = 7
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 1_764_000_000_000


def reason(record: Record) -> str:
    result = decode(record, max_bytes=1000)
    assert isinstance(result, Undecodable)
    return result.reason


def test_a_bare_order_is_decoded_with_an_id_derived_from_its_position() -> None:
    record = Record(topics.ORDERS_SUBMITTED.name, json.dumps(order_document()).encode())
    first, again = decode(record, 10_000), decode(record, 10_000)
    assert isinstance(first, Inbound) and isinstance(again, Inbound)
    assert isinstance(first.payload, ev.SubmittedOrder)
    assert first.event_id == again.event_id


def test_an_event_id_header_is_honoured() -> None:
    event_id = uuid.uuid4()
    record = Record(
        topics.ORDERS_SUBMITTED.name,
        json.dumps(order_document()).encode(),
        headers=(("event_id", str(event_id).encode()),),
    )
    result = decode(record, 10_000)
    assert isinstance(result, Inbound) and result.event_id == event_id


def test_an_envelope_on_an_internal_topic_is_decoded_to_its_payload() -> None:
    payload = ev.OrderDelivered(order_id=uuid.uuid4(), delivered_at="2026-11-21T10:00:00Z")
    envelope = wrap(payload, producer="fulfillment", order_id=payload.order_id)
    result = decode(Record(topics.FULFILLMENT_EVENTS.name, encode(envelope)), 10_000)
    assert isinstance(result, Inbound) and result.payload == payload


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b'{"channel": ', "not JSON"),
        (b"[]", "schema: (root): Input should be a valid dictionary"),
        (b"x" * 1001, "oversized: 1001 bytes, limit 1000"),
        (None, "empty record (tombstone)"),
    ],
)
def test_garbage_gets_a_reason(value: bytes | None, expected: str) -> None:
    assert reason(Record(topics.ORDERS_SUBMITTED.name, value)).startswith(expected)


def test_schema_reasons_name_fields_but_not_their_values() -> None:
    document = order_document()
    document["customer"]["email"] = "not-an-email-but-personal"
    document["lines"][0]["unit_price"] = 9.99
    text = reason(Record(topics.ORDERS_SUBMITTED.name, json.dumps(document).encode()))
    assert "customer.email" in text and "lines.0.unit_price" in text
    assert "not-an-email-but-personal" not in text


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    payload = ev.OrderDelivered(order_id=uuid.uuid4(), delivered_at="2026-11-21T10:00:00Z")
    envelope = wrap(payload, producer="fulfillment")
    assert "does not belong on oms.orders.validated" in reason(Record(topics.ORDERS_VALIDATED.name, encode(envelope)))
