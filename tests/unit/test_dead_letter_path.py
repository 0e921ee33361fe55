"""The dead-letter path cannot fail on the record: a copy too large for the broker, or one the broker refuses
for good, is kept in the service's table with a small pointer in the topic; only an unavailable broker makes
it raise (the consumer then waits and tries again)."""

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from aiokafka import errors as kafka_errors

from shared.backbone.dlq import STORED, DeadLetters, record_bytes
from shared.backbone.kafka import Origin, Undecodable


class FakeProducer:
    """Stands in for the broker: refuses records as told, keeps the rest."""

    def __init__(self, refuse_with: Exception | None = None, refuse_pointers: bool = False) -> None:
        self.refuse_with = refuse_with
        self.refuse_pointers = refuse_pointers
        self.sent: list[tuple[str, bytes | None, list[Any]]] = []

    async def send(self, topic, value, key=None, headers=None):
        future = asyncio.get_running_loop().create_future()
        is_pointer = any(k == STORED for k, _ in headers or [])
        if self.refuse_with is not None and (not is_pointer or self.refuse_pointers):
            future.set_exception(self.refuse_with)
        else:
            self.sent.append((topic, value, list(headers or [])))
            future.set_result(None)
        return future


class FakeConnection:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    @contextlib.asynccontextmanager
    async def transaction(self):
        yield

    async def fetchval(self, _query, *args):
        self.rows.append(args)
        return len(self.rows)


class FakePool:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    @contextlib.asynccontextmanager
    async def acquire(self):
        yield FakeConnection(self.rows)


def dead_letters(producer: FakeProducer, pool: FakePool, limit: int = 10_000) -> DeadLetters:
    service = f"unit-{uuid.uuid4().hex[:8]}"
    return DeadLetters(service, producer, pool, max_record_bytes=limit, send_timeout=5)  # type: ignore[arg-type]


def poison(value: bytes, reason: str = "not JSON: JSONDecodeError at position 0") -> Undecodable:
    origin = Origin("oms.orders.submitted", 2, 41, b"webshop:A-1", value, (("traceparent", None),), 1_764_000_000_000)
    return Undecodable(origin, reason)


async def test_a_dead_letter_that_fits_goes_to_the_topic_with_reason_and_origin() -> None:
    producer, pool = FakeProducer(), FakePool()
    letters = dead_letters(producer, pool)
    await letters.send([poison(b"garbage")])
    ((topic, value, headers),) = producer.sent
    assert topic == letters.topic and value == b"garbage" and pool.rows == []
    named = dict(headers)
    assert named["dlq.reason"] == b"not JSON: JSONDecodeError at position 0"
    assert (named["dlq.origin.partition"], named["dlq.origin.offset"]) == (b"2", b"41")
    assert named["dlq.origin.timestamp"] == b"1764000000000"
    assert named["traceparent"] is None


async def test_a_copy_too_large_once_the_headers_are_added_is_kept_in_the_table_and_pointed_at() -> None:
    producer, pool = FakeProducer(), FakePool()
    item = poison(b"x" * 9_800)
    assert record_bytes(item.origin.key, item.origin.value, list(item.origin.headers)) <= 10_000
    await dead_letters(producer, pool, limit=10_000).send([item])
    ((topic, partition, offset, timestamp, key, value, header_keys, header_values, reason, unreadable),) = pool.rows
    assert (topic, partition, offset, timestamp) == ("oms.orders.submitted", 2, 41, 1_764_000_000_000)
    assert (key, value, header_keys, header_values) == (b"webshop:A-1", b"x" * 9_800, [b"traceparent"], [None])
    assert "bytes with the dead-letter headers, limit 10000" in reason and not unreadable
    ((_, pointer_value, pointer_headers),) = producer.sent
    assert pointer_value is None and dict(pointer_headers)[STORED].endswith(b".dead_letters:1")


@pytest.mark.parametrize(
    "refusal",
    [kafka_errors.TopicAuthorizationFailedError(), kafka_errors.MessageSizeTooLargeError()],
    ids=lambda e: e.__class__.__name__,
)
async def test_a_copy_the_broker_refuses_for_good_is_kept_in_the_table(refusal) -> None:
    producer, pool = FakeProducer(refuse_with=refusal, refuse_pointers=True), FakePool()
    await dead_letters(producer, pool).send([poison(b"garbage")])
    ((*_, reason, _unreadable),) = pool.rows
    assert f"the dead-letter topic refused it: {refusal.__class__.__name__}" in reason
    assert producer.sent == []  # and the pointer, refused too, is only best effort


async def test_an_unavailable_broker_raises_so_the_consumer_waits_and_keeps_nothing_yet() -> None:
    producer, pool = FakeProducer(refuse_with=kafka_errors.KafkaConnectionError()), FakePool()
    with pytest.raises(kafka_errors.KafkaConnectionError):
        await dead_letters(producer, pool).send([poison(b"garbage")])
    assert pool.rows == []
