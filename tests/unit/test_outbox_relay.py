"""The relay's publishing step: it cannot hang on a broker that never answers, and an event the broker can
never take is set aside instead of holding up every event behind it."""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.backbone.outbox import INDEXES_ONLY, RELEASE_SNAPSHOT, OutboxRelay
from shared.backbone.settings import CommonSettings


class FakeProducer:
    def __init__(self, answer: bool = True, steps: list[str] | None = None) -> None:
        self.answer = answer
        self.sent: list[bytes] = []
        self.steps = [] if steps is None else steps  # a connection's, to see the order of both sides

    async def send(self, topic, value, key=None):
        self.steps.append("send")
        future = asyncio.get_running_loop().create_future()
        if self.answer:
            self.sent.append(value)
            future.set_result(None)
        return future  # otherwise never answered


class FakeConnection:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.steps: list[str] = []  # reads ("read") and the statements that change nothing, in order

    @contextlib.asynccontextmanager
    async def transaction(self):
        yield

    async def fetch(self, _query, *_args):
        self.steps.append("read")
        # the relay lock is free: each row comes with it, or one row without an outbox row when there is none
        return [{"mine": True, **row} for row in self.rows] or [{"mine": True, "id": None}]

    async def execute(self, query, *args):
        if query in (INDEXES_ONLY, RELEASE_SNAPSHOT):  # how statements are planned, what the session keeps
            self.steps.append(query)
            return
        self.statements.append((query.split()[0] + " " + query.split()[2], args))

    async def fetchrow(self, _query):
        return (0, 0)


class FakePool:
    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    @contextlib.asynccontextmanager
    async def acquire(self):
        yield self.connection


def outbox_rows(*sizes: int) -> list[dict[str, Any]]:
    at = datetime.now(UTC)
    return [
        {"id": i + 1, "topic": "oms.allocation.events", "key": str(uuid.uuid4()), "body": b"x" * size, "created_at": at}
        for i, size in enumerate(sizes)
    ]


def relay(connection: FakeConnection, producer: FakeProducer, **settings: Any) -> OutboxRelay:
    common = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}", **settings)
    return OutboxRelay(common, FakePool(connection), producer)  # type: ignore[arg-type]


async def test_a_broker_that_never_answers_fails_the_step_within_the_send_timeout_and_keeps_the_rows() -> None:
    connection = FakeConnection(outbox_rows(10, 10))
    step = asyncio.create_task(
        relay(connection, FakeProducer(answer=False), kafka_send_timeout_seconds=0.2).publish_batch()
    )
    done, _ = await asyncio.wait({step}, timeout=5)
    step.cancel()
    assert step in done, "the step still waits for the broker"
    assert isinstance(step.exception(), TimeoutError)
    assert connection.statements == []  # nothing deleted: the rows are published again next time


async def test_an_event_larger_than_the_broker_takes_is_set_aside_and_the_others_are_published() -> None:
    connection = FakeConnection(outbox_rows(10, 5_000, 10))
    producer = FakeProducer()
    assert await relay(connection, producer, kafka_max_record_bytes=1_000).publish_batch() == 3
    assert producer.sent == [b"x" * 10, b"x" * 10]
    (set_aside, deleted) = connection.statements
    assert set_aside[0] == "INSERT dead_letters" and set_aside[1][1] == 2
    assert set_aside[1][-1].startswith("event too large to publish: ")
    assert deleted == ("DELETE outbox", ([1, 2, 3],))


class HeldElsewhere(FakeConnection):
    async def fetch(self, _query, *_args):
        return [{"mine": False, "id": None}]  # another instance holds the relay lock: no rows read


async def test_a_relay_whose_lock_is_held_elsewhere_publishes_and_deletes_nothing() -> None:
    connection = HeldElsewhere(outbox_rows(10))
    producer = FakeProducer()
    assert await relay(connection, producer).publish_batch() == 0
    assert (producer.sent, connection.statements) == ([], [])


async def test_the_relay_plans_its_statements_before_its_first_read_so_that_they_never_scan_the_whole_outbox() -> None:
    connection = FakeConnection(outbox_rows(10))
    assert await relay(connection, FakeProducer(steps=connection.steps)).publish_batch() == 1
    assert connection.steps[:2] == [INDEXES_ONLY, "read"] and connection.steps.count(INDEXES_ONLY) == 1


async def test_the_relay_gives_up_its_read_snapshot_before_it_waits_for_the_broker() -> None:
    connection = FakeConnection(outbox_rows(10, 10))
    assert await relay(connection, FakeProducer(steps=connection.steps)).publish_batch() == 2
    assert connection.steps[1:] == ["read", RELEASE_SNAPSHOT, "send", "send"]
