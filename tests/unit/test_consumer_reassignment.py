"""A batch's offsets are committed only if the group did not take partitions from the instance while the batch was
handled. The client rejoins in the background and a commit carries the generation current when it is sent, so a
batch fetched before a reassignment (an instance frozen past its session, then continued) would commit old offsets
in the new generation: a partition's committed offset would move back behind what the other instance committed and
stay there while no new record comes. Instead the instance reads on from the committed offsets."""

import uuid

from aiokafka import TopicPartition
from aiokafka.errors import CorruptRecordException

from shared.backbone.consumer import EventConsumer
from shared.backbone.settings import CommonSettings
from shared.contracts.events import ProductUpserted
from tests.unit.test_consumer_failures import TP, FakeDeadLetters, FakePool, FlakyKafkaConsumer, Handler, product


class Reassigning(Handler):
    """Handles its records; while doing so, the group takes its consumer's partitions (and gives them back), if it
    is given a consumer."""

    def __init__(self) -> None:
        super().__init__({})
        self.consumer: EventConsumer | None = None

    async def handle(self, conn, msg) -> None:
        await super().handle(conn, msg)
        if self.consumer is not None:
            self.consumer.reassignments.on_partitions_revoked({TP})
            self.consumer.reassignments.on_partitions_assigned({TP})


def consumer_with(handler: Reassigning) -> EventConsumer:
    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}")
    return EventConsumer(settings, FakePool(), FakeDeadLetters(), {ProductUpserted: handler})  # type: ignore[arg-type]


async def test_a_batch_handled_across_a_reassignment_commits_nothing_and_reads_on_from_the_committed_offsets() -> None:
    handler = Reassigning()
    consumer = consumer_with(handler)
    handler.consumer = consumer
    kafka = FlakyKafkaConsumer(RuntimeError("unused"))
    fetched_in = consumer.reassignments.count

    await consumer._process(kafka, {TP: [product("A", 10), product("B", 11)]}, fetched_in)

    assert consumer.pool.committed == ["A", "B"]  # type: ignore[attr-defined]  # what it did is kept
    assert kafka.commits == []  # no offsets from before the reassignment
    assert kafka.seeks == [(TP, 10)]  # read again from the committed offset, where the repeats change nothing


async def test_a_batch_handled_without_a_reassignment_commits_its_offsets() -> None:
    consumer = consumer_with(Reassigning())
    kafka = FlakyKafkaConsumer(RuntimeError("unused"))

    await consumer._process(kafka, {TP: [product("A", 10), product("B", 11)]}, consumer.reassignments.count)

    assert kafka.commits == [{TP: 12}]
    assert kafka.seeks == []


def test_only_a_reassignment_that_takes_partitions_counts() -> None:
    consumer = consumer_with(Reassigning())
    consumer.reassignments.on_partitions_revoked(set())  # the first join: nothing held, nothing fetched
    assert consumer.reassignments.count == 0
    consumer.reassignments.on_partitions_revoked({TopicPartition(TP.topic, 3)})
    assert consumer.reassignments.count == 1


class ReadableThenUnreadable(FlakyKafkaConsumer):
    """One partition: a readable record at offset 10, then one the client cannot parse at 11."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))
        self.handed_out = False

    async def getmany(self, *partitions, timeout_ms=0, max_records=None):
        if not self.handed_out:
            self.handed_out = True
            return {TP: [product("A", 10)]}
        raise CorruptRecordException()

    async def position(self, tp) -> int:
        return self.seeks[-1][1] if self.seeks else 11


async def test_an_unreadable_record_found_across_a_reassignment_is_not_set_aside_by_a_stale_position() -> None:
    handler = Reassigning()
    consumer = consumer_with(handler)
    handler.consumer = consumer
    kafka = ReadableThenUnreadable()

    await consumer._step_to_unreadable(kafka, TP)

    assert consumer.pool.committed == ["A"]  # type: ignore[attr-defined]  # the readable record handled
    assert consumer.dead_letters.kept == []  # type: ignore[attr-defined]  # nothing set aside by a stale position
    assert kafka.commits == []
    assert kafka.seeks == [(TP, 10)]  # read again from the committed offset; the search starts over there


async def test_an_unreadable_record_found_without_a_reassignment_is_set_aside_and_passed() -> None:
    consumer = consumer_with(Reassigning())
    kafka = ReadableThenUnreadable()

    await consumer._step_to_unreadable(kafka, TP)

    assert [item.origin.offset for item in consumer.dead_letters.kept] == [11]  # type: ignore[attr-defined]
    assert kafka.commits == [{TP: 11}, {TP: 12}]
    assert kafka.seeks == [(TP, 12)]
