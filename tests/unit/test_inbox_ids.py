"""Ids of bare records that come without one: the same record always gets the same id (a redelivery is
recognised), and no other record can get it, not even one at the same position of a recreated topic."""

import json
from dataclasses import dataclass

from shared.backbone.kafka import Inbound, decode
from shared.contracts import topics
from tests.factories import order_document

TOPIC = topics.ORDERS_SUBMITTED.name


@dataclass
class Record:
    value: bytes
    offset: int = 41
    timestamp: int = 1_764_000_000_000
    key: bytes | None = b"webshop:A-1"
    topic: str = TOPIC
    partition: int = 3
    headers: tuple[tuple[str, bytes], ...] = ()


def event_id(record: Record):
    decoded = decode(record, 1_000_000)
    assert isinstance(decoded, Inbound)
    return decoded.event_id


ORDER = json.dumps(order_document()).encode()


def test_the_same_record_delivered_again_gets_the_same_id() -> None:
    assert event_id(Record(ORDER)) == event_id(Record(ORDER))


def test_a_record_at_the_same_position_of_a_recreated_topic_gets_another_id() -> None:
    before = Record(ORDER)
    recreated = Record(json.dumps(order_document()).encode(), timestamp=before.timestamp + 86_400_000)
    assert event_id(recreated) != event_id(before)


def test_even_a_copy_of_the_same_order_at_that_position_later_gets_another_id() -> None:
    assert event_id(Record(ORDER, timestamp=1_764_000_000_000)) != event_id(Record(ORDER, timestamp=1_764_000_000_001))


def test_records_at_other_positions_get_other_ids() -> None:
    assert len({event_id(Record(ORDER, offset=o)) for o in range(100)}) == 100


def test_the_key_counts_and_no_key_differs_from_an_empty_one() -> None:
    ids = {event_id(Record(ORDER, key=k)) for k in (b"webshop:A-1", b"webshop:A-2", b"", None)}
    assert len(ids) == 4
