"""How long the oldest snapshot open on the service's database has been held. While a session keeps one (a report,
a backup with pg_dump, a transaction left open by hand), PostgreSQL can remove no row version that any transaction
replaced or deleted since, in any table of the database: the outbox relays then read through every row published
since, and allocation through every version of the stock rows it updates all day. One snapshot held for 62 s during
a steady 200 orders/s made the p99 to pick task 3.05 s against 0.59 s in the run before it (docs/benchmarks/
findings.md, round 39); nothing is lost, the pipeline only slows until the snapshot closes.

A transaction that has written holds the same horizon by its id for as long as it stays open, with no snapshot
at all while it sits idle (what `BEGIN; UPDATE …` left open in psql does, and what a service's batch does between
its statements), and so does a replication slot a standby's feedback set, and a prepared transaction: the watch
counts each of them too.

PostgreSQL shows every role each session's snapshot and transaction id (`backend_xmin`, `backend_xid`), not when
they were taken (that needs `pg_read_all_stats`, which would also show other roles' statements). So the watch notes
when it first saw each and reports the longest still open: at least that old, at most one look older."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg

from shared.backbone.metrics import OLDEST_SNAPSHOT
from shared.backbone.periodic import refresh_every
from shared.backbone.settings import CommonSettings

# What holds this database's horizon, this session aside: each session's transaction once it has an id (it holds
# from then until it ends), else its snapshot; a standby's feedback, through its walsender and its replication slot
# (they hold every database); a prepared transaction. A logical slot's catalog_xmin holds the catalogs alone.
OPEN_SNAPSHOTS = (
    "SELECT 'session ' || pid AS holder, coalesce(backend_xid, backend_xmin)::text AS xid FROM pg_stat_activity"
    " WHERE coalesce(backend_xid, backend_xmin) IS NOT NULL AND pid <> pg_backend_pid()"
    " AND (datname = current_database() OR backend_type = 'walsender')"
    " UNION ALL SELECT 'slot ' || slot_name, xmin::text FROM pg_replication_slots WHERE xmin IS NOT NULL"
    " UNION ALL SELECT 'prepared ' || gid, transaction::text FROM pg_prepared_xacts"
    " WHERE database = current_database()"
)

# (what holds it: 'session <pid>', 'slot <name>' or 'prepared <gid>'; the transaction id it holds from)
Snapshot = tuple[str, str]


class HeldSnapshots:
    """The snapshots seen open, and since when (pure: the caller passes what it read and the time)."""

    def __init__(self) -> None:
        self._since: dict[Snapshot, float] = {}

    def longest(self, open_now: Iterable[Snapshot], now: float) -> float:
        """Seconds the longest held of `open_now` has been open as far as the looks so far tell; 0 with none. A
        session's next snapshot or transaction (another id) counts from when it is first seen; closed ones are
        forgotten."""
        self._since = {snapshot: self._since.get(snapshot, now) for snapshot in open_now}
        return max((now - since for since in self._since.values()), default=0.0)


async def open_snapshots(conn: asyncpg.Pool | asyncpg.Connection) -> list[Snapshot]:
    return [(r["holder"], r["xid"]) for r in await conn.fetch(OPEN_SNAPSHOTS)]


async def watch(settings: CommonSettings, pool: asyncpg.Pool) -> None:
    """The background loop: a look every `db_snapshot_watch_seconds`, a failed one (the database away) logged and
    tried again at the next, the gauge keeping its last figure. Never put off while the order path is behind: a
    held snapshot is one reason it falls behind."""
    held, gauge = HeldSnapshots(), OLDEST_SNAPSHOT.labels(settings.service)
    clock = asyncio.get_running_loop().time

    async def look() -> None:
        gauge.set(held.longest(await open_snapshots(pool), clock()))

    await refresh_every("oldest snapshot gauge", settings.db_snapshot_watch_seconds, look)
