"""How the shared consumer treats a failing batch, by the class of the failure: an outage is waited out and
the records are processed once it is over; contention is retried a bounded number of times; a permanent
failure is dead-lettered at once; the offsets are committed in every case, and only after the outcome is kept."""

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from shared.backbone import consumer as consumer_module
from shared.backbone.consumer import EventConsumer
from shared.backbone.kafka import Inbound
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.events import ProductUpserted
from tests.waiting import eventually

TOPIC = topics.CATALOG_PRODUCTS.name
TP = TopicPartition(TOPIC, 0)


@dataclass
class Record:
    value: bytes
    offset: int
    topic: str = TOPIC
    partition: int = 0
    key: bytes | None = None
    headers: tuple[Any, ...] = ()
    timestamp: int = 1_764_000_000_000


class FakeConnection:
    """Keeps what handlers did in a transaction only if it commits."""

    def __init__(self, committed: list[str]) -> None:
        self.committed = committed
        self.pending: list[str] = []

    @contextlib.asynccontextmanager
    async def transaction(self):
        self.pending = []
        yield
        self.committed.extend(self.pending)

    async def fetch(self, _query, event_ids):
        return [{"event_id": event_id} for event_id in event_ids]


class FakePool:
    def __init__(self) -> None:
        self.committed: list[str] = []

    @contextlib.asynccontextmanager
    async def acquire(self):
        yield FakeConnection(self.committed)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.kept: list[Any] = []

    async def send(self, items) -> None:
        self.kept.extend(items)


class FakeKafkaConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[Any, int]] = []

    async def commit(self, offsets) -> None:
        self.commits.append(dict(offsets))


class Handler:
    """Fails for the SKUs it is told to, a number of times or always, then records what it handled."""

    def __init__(self, failures: dict[str, tuple[Exception, int]]) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}

    async def __call__(self, conn, msgs: list[Inbound[ProductUpserted]]) -> None:
        for msg in msgs:
            await self.handle(conn, msg)

    async def handle(self, conn, msg: Inbound[ProductUpserted]) -> None:
        assert isinstance(msg.payload, ProductUpserted)
        sku = msg.payload.sku
        self.calls[sku] = self.calls.get(sku, 0) + 1
        error, times = self.failures.get(sku, (None, 0))
        if error is not None and self.calls[sku] <= times:
            raise error
        conn.pending.append(sku)


def product(sku: str, offset: int) -> Record:
    body = {"sku": sku, "name": sku, "weight_grams": 1, "active": True}
    return Record(json.dumps(body).encode(), offset)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch) -> None:
    monkeypatch.setattr(consumer_module, "backoff", lambda attempt, cap=10.0: 0.0)


@dataclass
class Outcome:
    committed: list[str]  # the SKUs whose handling committed
    dead_letters: list[Any]
    offsets: list[dict[Any, int]]  # the offset commits


async def run_batch(handler: Handler, skus: list[str], **limits: Any) -> Outcome:
    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}", contention_retries=2, **limits)
    pool, dead_letters, kafka = FakePool(), FakeDeadLetters(), FakeKafkaConsumer()
    consumer = EventConsumer(settings, pool, dead_letters, {ProductUpserted: handler})  # type: ignore[arg-type]
    await consumer._process(
        kafka, {TP: [product(sku, 10 + i) for i, sku in enumerate(skus)]}, consumer.reassignments.count
    )
    return Outcome(pool.committed, dead_letters.kept, kafka.commits)


async def test_a_statement_timeout_is_permanent_the_record_is_dead_lettered_without_retries() -> None:
    timeout = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    handler = Handler({"SLOW": (timeout, 1_000)})
    outcome = await run_batch(handler, ["A", "SLOW", "B"])
    assert [d.reason for d in outcome.dead_letters] == [
        "handler failed: QueryCanceledError: canceling statement due to statement timeout"
    ]
    assert outcome.dead_letters[0].origin.offset == 11
    assert handler.calls["SLOW"] == 2  # once in the batch, once alone
    assert outcome.committed == ["A", "B"]
    assert outcome.offsets == [{TP: 13}]


async def test_contention_that_persists_is_retried_a_bounded_number_of_times_then_dead_lettered() -> None:
    handler = Handler({"HOT": (asyncpg.DeadlockDetectedError("deadlock detected"), 1_000)})
    outcome = await run_batch(handler, ["HOT", "A"])
    assert [d.reason for d in outcome.dead_letters] == [
        "handler failed: DeadlockDetectedError: deadlock detected (contention persisted)"
    ]
    assert handler.calls["HOT"] == 2 * (1 + 2)  # the batch and the record alone, each tried 1 + 2 times
    assert outcome.committed == ["A"]
    assert outcome.offsets == [{TP: 12}]


async def test_contention_that_clears_within_the_bound_dead_letters_nothing() -> None:
    handler = Handler({"HOT": (asyncpg.SerializationError("could not serialize access"), 2)})
    outcome = await run_batch(handler, ["HOT", "A"])
    assert outcome.dead_letters == []
    assert outcome.committed == ["HOT", "A"]


class LockWait(Handler):
    """Fails like a lock wait that timed out (55P03): after waiting, as the database makes it wait."""

    async def handle(self, conn, msg: Inbound[ProductUpserted]) -> None:
        assert isinstance(msg.payload, ProductUpserted)
        if msg.payload.sku in self.failures and self.calls.get(msg.payload.sku, 0) < self.failures[msg.payload.sku][1]:
            await asyncio.sleep(WAIT)
        await super().handle(conn, msg)


WAIT = 0.05
# A stalled instance's locks are freed by the server once its idle transaction times out: here 0.5 s (+ the lock
# wait that notices, 0.1 s). Sessions are bounded as in production, only shorter.
STALL_BOUNDS = {"db_idle_in_tx_timeout_ms": 500, "db_lock_timeout_ms": 100, "kafka_send_timeout_seconds": 0.2}


async def test_a_lock_a_stalled_instance_holds_is_waited_for_until_the_server_frees_it_nothing_dead_lettered() -> None:
    # given a record whose locks another instance holds while it is stalled: its lock waits time out 8 times in a
    # row (about 0.4 s, more than the 2 contention retries allow, less than the idle timeout that frees the locks)
    handler = LockWait({"HELD": (asyncpg.LockNotAvailableError("canceling statement due to lock timeout"), 8)})
    # when the consumer handles it
    outcome = await run_batch(handler, ["HELD", "A"], **STALL_BOUNDS)
    # then it is retried until the locks are free, and nothing is dead-lettered
    assert outcome.dead_letters == []
    assert outcome.committed == ["HELD", "A"]


async def test_lock_waits_that_outlast_any_stalled_holder_are_dead_lettered() -> None:
    handler = LockWait({"HELD": (asyncpg.LockNotAvailableError("canceling statement due to lock timeout"), 1_000)})
    outcome = await run_batch(handler, ["HELD", "A"], **STALL_BOUNDS)
    assert [d.reason for d in outcome.dead_letters] == [
        "handler failed: LockNotAvailableError: canceling statement due to lock timeout (contention persisted)"
    ]
    assert outcome.committed == ["A"]


async def test_a_database_outage_is_waited_out_however_long_and_nothing_is_dead_lettered() -> None:
    handler = Handler({"A": (asyncpg.ConnectionDoesNotExistError("connection was closed"), 25)})
    outcome = await run_batch(handler, ["A", "B"])
    assert outcome.dead_letters == []
    assert handler.calls["A"] == 26
    assert outcome.committed == ["A", "B"]
    assert outcome.offsets == [{TP: 12}]


class FlakyKafkaConsumer(FakeKafkaConsumer):
    """A poll that fails, then one that hands out records; records the rewinds to the committed offsets."""

    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.failure: Exception | None = failure
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, *partitions, timeout_ms=0, max_records=None):
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        if not self.commits:
            return {TP: [product("AFTER", 10)]}
        await asyncio.sleep(0.01)
        return {}

    async def committed(self, tp) -> int:
        return 10

    def seek(self, tp, offset) -> None:
        self.seeks.append((tp, offset))

    def highwater(self, tp) -> None:
        return None


@pytest.mark.parametrize(
    "failure", [RuntimeError("a bug in a step"), KafkaConnectionError()], ids=lambda e: e.__class__.__name__
)
async def test_a_failed_step_rewinds_to_the_committed_offsets_and_the_loop_carries_on(failure) -> None:
    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}")
    pool, kafka = FakePool(), FlakyKafkaConsumer(failure)
    consumer = EventConsumer(settings, pool, FakeDeadLetters(), {ProductUpserted: Handler({})})  # type: ignore[arg-type]
    consumer._consumer = lambda: kafka  # type: ignore[method-assign]
    running = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: pool.committed, lambda skus: skus == ["AFTER"], timeout=10)
        assert not running.done()
        assert kafka.seeks == [(TP, 10)]
        assert kafka.commits == [{TP: 11}]
    finally:
        running.cancel()
