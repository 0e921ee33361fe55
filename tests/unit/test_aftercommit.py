"""Metric increments and other after-commit actions happen only once their transaction has committed."""

import contextlib
from typing import Any

import pytest

from shared.backbone import aftercommit
from shared.backbone.metrics import count


class FakeConnection:
    """Stands in for asyncpg: transaction() commits unless the block raised (then it rolls back)."""

    def __init__(self) -> None:
        self.commits = 0

    @classmethod
    def new(cls) -> Any:  # typed as asyncpg's connection for the code under test
        return cls()

    @contextlib.asynccontextmanager
    async def transaction(self):
        yield
        self.commits += 1


class Tally:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


async def test_actions_wait_for_the_commit() -> None:
    conn, tally = FakeConnection.new(), Tally()
    async with aftercommit.transaction(conn):
        count(tally, 2)
        assert tally.value == 0
    assert conn.commits == 1 and tally.value == 2


async def test_actions_of_a_rolled_back_transaction_never_run() -> None:
    conn, tally = FakeConnection.new(), Tally()
    with pytest.raises(RuntimeError):
        async with aftercommit.transaction(conn):
            count(tally)
            raise RuntimeError("handler failed")
    assert conn.commits == 0 and tally.value == 0


async def test_a_retried_transaction_counts_once() -> None:
    conn, tally = FakeConnection.new(), Tally()
    for attempt in range(3):
        with contextlib.suppress(ConnectionError):
            async with aftercommit.transaction(conn):
                count(tally)
                if attempt < 2:
                    raise ConnectionError("database restarting")
    assert tally.value == 1


async def test_a_nested_transaction_waits_for_the_outer_commit() -> None:
    conn, tally = FakeConnection.new(), Tally()
    with pytest.raises(RuntimeError):
        async with aftercommit.transaction(conn):
            async with aftercommit.transaction(conn):
                count(tally)
            assert tally.value == 0
            raise RuntimeError("outer fails after the savepoint")
    assert tally.value == 0


def test_outside_a_transaction_an_action_runs_at_once() -> None:
    tally = Tally()
    count(tally)
    assert tally.value == 1
