"""Once a poll brings records, the consumer gathers what arrives within its linger into the same batch (a batch
pays a transaction, a WAL flush and an offset commit whatever its size), keeping each partition's order, and
never more than a batch."""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from shared.backbone import consumer as consumer_module
from shared.backbone.consumer import EventConsumer
from shared.backbone.settings import CommonSettings
from tests.unit.test_consumer_failures import FakeDeadLetters, FakePool

A, B = TopicPartition("oms.orders.submitted", 0), TopicPartition("oms.orders.submitted", 1)


class ArrivingRecords:
    """A Kafka consumer whose polls return the scripted arrivals, each after its delay (or nothing, after the
    poll's whole timeout, once they are used up). Time is its own clock, which the consumer reads too: waiting
    advances it at once, so no outcome depends on how busy the machine is."""

    def __init__(self, arrivals: list[tuple[float, dict[TopicPartition, list[int]]]]) -> None:
        self.arrivals = list(arrivals)
        self.polls: list[tuple[int, int | None]] = []
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def getmany(self, *_: Any, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[int]]:
        self.polls.append((timeout_ms, max_records))
        if not self.arrivals:
            self.now += timeout_ms / 1000
            return {}
        delay, records = self.arrivals.pop(0)
        if delay * 1000 > timeout_ms:  # not there within this poll's time
            self.now += timeout_ms / 1000
            self.arrivals.insert(0, (delay - timeout_ms / 1000, records))
            return {}
        self.now += delay
        return records


@pytest.fixture
def clock(monkeypatch) -> Callable[[ArrivingRecords], None]:
    """Makes the consumer's linger read the fake consumer's clock."""

    def use(kafka: ArrivingRecords) -> None:
        monkeypatch.setattr(consumer_module, "time", SimpleNamespace(monotonic=kafka.monotonic))

    return use


def consumer(**settings: Any) -> EventConsumer:
    return EventConsumer(CommonSettings(service="unit-linger", **settings), FakePool(), FakeDeadLetters(), {})  # type: ignore[arg-type]


async def test_records_arriving_within_the_linger_join_the_batch_in_each_partitions_order(clock) -> None:
    kafka = ArrivingRecords([(0, {A: [1]}), (0.005, {B: [10]}), (0.005, {A: [2, 3]}), (0.5, {A: [4]})])
    clock(kafka)
    batches = await consumer(consumer_linger_ms=40)._poll(kafka)
    assert batches == {A: [1, 2, 3], B: [10]}
    assert kafka.now < 0.3  # the linger, not the record that came later
    assert kafka.arrivals and kafka.arrivals[0][1] == {A: [4]}  # left for the next batch


async def test_the_linger_ends_once_a_batch_is_full(clock) -> None:
    kafka = ArrivingRecords([(0, {A: [1, 2]}), (0, {B: [10, 11]}), (0, {A: [3]})])
    clock(kafka)
    batches = await consumer(consumer_linger_ms=1000, consumer_batch_size=4)._poll(kafka)
    assert batches == {A: [1, 2], B: [10, 11]}
    assert [limit for _, limit in kafka.polls] == [4, 2]  # each poll asks only for what still fits


async def test_without_a_linger_a_batch_is_what_one_poll_brought(clock) -> None:
    kafka = ArrivingRecords([(0, {A: [1]}), (0, {A: [2]})])
    clock(kafka)
    assert await consumer(consumer_linger_ms=0)._poll(kafka) == {A: [1]}


async def test_an_empty_poll_does_not_linger(clock) -> None:
    kafka = ArrivingRecords([])
    clock(kafka)
    assert await consumer(consumer_linger_ms=1000, consumer_poll_ms=10)._poll(kafka) == {}
    assert len(kafka.polls) == 1
