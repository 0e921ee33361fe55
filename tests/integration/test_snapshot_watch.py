"""The watch of open snapshots on the real stack: a service's role, which may not read other roles' statements,
sees a snapshot another role holds open (what a report or a pg_dump does) and times it until it closes."""

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


async def test_a_snapshot_an_administrator_holds_is_seen_by_a_service_role_and_timed_until_it_closes(
    db, as_capture
) -> None:
    held = HeldSnapshots()
    async with db.acquire() as report:
        # given an administrator's report reading in one repeatable-read transaction
        reading = report.transaction(isolation="repeatable_read", readonly=True)
        await reading.start()
        await report.fetchval("SELECT count(*) FROM capture.outbox")
        pid = await report.fetchval("SELECT pg_backend_pid()")

        # when the service's role looks twice (the looks' times given: their timing is the unit tests')
        first = await open_snapshots(as_capture)
        held.longest(first, 100.0)
        second = await open_snapshots(as_capture)

        # then it sees the report's snapshot both times, the same one, held since the first look
        assert pid in {session for session, _ in first}
        assert [s for s in second if s[0] == pid] == [s for s in first if s[0] == pid]
        assert held.longest(second, 110.0) == 10.0

        # and once the report ends, it is gone
        await reading.rollback()
        assert pid not in {session for session, _ in await open_snapshots(as_capture)}
