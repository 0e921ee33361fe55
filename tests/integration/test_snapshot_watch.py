"""The watch of open snapshots on the real stack: a service's role, which may not read other roles' statements,
sees a snapshot another role holds open (what a report or a pg_dump does), and a write left open that holds no
snapshot, and times each until it ends."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.backbone.snapshots import HeldSnapshots, open_snapshots
from tests.local import LOCAL


@pytest.fixture
async def as_capture(db) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(LOCAL.pg_dsn("capture"), password=LOCAL.db_password("capture"))
    yield conn
    await conn.close()


async def seen_by_two_looks_and_timed(as_capture: asyncpg.Connection, session: str) -> None:
    """The service's role looks twice (the looks' times given: their timing is the unit tests'): it sees the
    session's hold both times, by the same id, held since the first look."""
    held = HeldSnapshots()
    first = await open_snapshots(as_capture)
    held.longest(first, 100.0)
    second = await open_snapshots(as_capture)
    assert session in {holder for holder, _ in first}
    assert [s for s in second if s[0] == session] == [s for s in first if s[0] == session]
    assert held.longest(second, 110.0) == 10.0


async def test_a_snapshot_an_administrator_holds_is_seen_by_a_service_role_and_timed_until_it_closes(
    db, as_capture
) -> None:
    async with db.acquire() as report:
        # given an administrator's report reading in one repeatable-read transaction
        reading = report.transaction(isolation="repeatable_read", readonly=True)
        await reading.start()
        await report.fetchval("SELECT count(*) FROM capture.outbox")
        session = f"session {await report.fetchval('SELECT pg_backend_pid()')}"

        # when the service's role looks twice, then it sees the report's snapshot, held since the first look
        await seen_by_two_looks_and_timed(as_capture, session)

        # and once the report ends, it is gone
        await reading.rollback()
        assert session not in {holder for holder, _ in await open_snapshots(as_capture)}


async def test_a_write_left_open_is_seen_though_it_holds_no_snapshot_and_timed_until_it_ends(db, as_capture) -> None:
    async with db.acquire() as by_hand:
        # given an administrator's write left open, as `BEGIN; UPDATE …` in psql leaves it: idle in its transaction
        # with no snapshot, its transaction id holding back every row version replaced since (the id taken as a
        # first write takes it, without locking a row the running services use)
        await by_hand.execute("BEGIN; SELECT txid_current()")
        pid = await by_hand.fetchval("SELECT pg_backend_pid()")
        await by_hand.execute("SELECT 1")  # a statement of the simple protocol: nothing of the last read kept
        state = await as_capture.fetchrow("SELECT backend_xmin, backend_xid FROM pg_stat_activity WHERE pid = $1", pid)
        assert state["backend_xmin"] is None and state["backend_xid"] is not None

        # when the service's role looks twice, then it sees the write by its transaction id, held since the first
        await seen_by_two_looks_and_timed(as_capture, f"session {pid}")

        # and once it is rolled back, it is gone
        await by_hand.execute("ROLLBACK")
        assert f"session {pid}" not in {holder for holder, _ in await open_snapshots(as_capture)}
