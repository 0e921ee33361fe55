"""The gauges' figures over the orders placed in the last hours, kept between rounds: a round reads again only the
orders whose facts changed since the last one (the changes noted with them, migration 003) and moves each in its
channel's tally, so it costs what changed, not the day. Late in a full bench a round that read the whole day took
6.5-27 s (about 175,000 orders: docs/benchmarks/findings.md, round 19).

A product's new or changed weight has the next round read again the orders with a shipment of it (it prices them).
The whole window is read at the first round, and when the last round is older than the changes are kept."""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from shared.backbone.db import Conn
from shared.backbone.peak import OrderPathWatch
from shared.backbone.periodic import give_way

from . import domain, repository
from .reports import Reporting

log = logging.getLogger(__name__)

# A round reads the changes since its last round's snapshot; each round deletes the changes older than a snapshot it
# took at least this long ago. A reader whose last round is older than half of it reads the whole window instead.
CHANGES_KEPT = 3600.0
# Orders placed up to this far after the round are counted too: a clock a little ahead must not leave an order out
# until its next change.
AHEAD = timedelta(hours=1)


# Orders read at a time: between two reads the event loop runs the service's other work, and the round gives way to
# the order path while it is behind. A read of 250 takes under 0.03 s of the process's CPU (1,000 took 0.05 s, several
# times that in wall time on a saturated machine, where the loop's holds over 0.5 s came from), for the same total.
CHUNK = 250


class Kept(NamedTuple):
    """An order in the window: its channel, when it was placed (POSIX seconds) and what it adds to its channel's tally,
    which is what taking it away again needs. Not its facts: a day of those did not fit a pod (docs/kpis.md)."""

    channel: str
    placed: float
    counted: domain.Counted


class WindowFigures:
    def __init__(self, reporting: Reporting, window: timedelta, kept: Callable[[], None] = lambda: None) -> None:
        """`kept` is called after each read, once its orders are counted: what the window keeps is built
        (collector.py)."""
        self.reporting, self.window, self.kept = reporting, window, kept
        self.orders: dict[UUID, Kept] = {}
        self.tallies: dict[str, domain.Tally] = {}
        self.rounds: deque[tuple[float, str]] = deque()  # (monotonic time taken, snapshot) of this reader's rounds

    async def groups(
        self, conn: Conn, until: datetime, order_path: OrderPathWatch | None = None
    ) -> list[dict[str, Any]]:
        """The report per channel over the orders placed since `until` less the window, the reads put off while the
        `order_path` watch says it is behind."""
        since, latest, started = until - self.window, until + AHEAD, time.monotonic()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            seen = await repository.snapshot(conn)
            changed = await self._changed(conn)
            if changed is None or changed.everything:
                whole, wanted = True, await repository.placed(conn, since, latest)
            else:
                whole, wanted = False, await self._read_again(conn, changed, since, latest)
            rejected = await repository.rejections(conn, since, until)
        if whole:  # a round that fails half way must not leave the next to read changes only
            self.orders, self.tallies, self.rounds = {}, {}, deque()
        # Each chunk as it is now: what changed after `seen` is read again at the next round anyway.
        for start in range(0, len(wanted), CHUNK):
            await give_way(order_path, "KPI gauges' round")
            for order in await self.reporting.facts(conn, since, latest, wanted[start : start + CHUNK]):
                self._put(order)
            self.kept()
        self._leave(since)
        await self._forget(conn, started, seen)
        took = time.monotonic() - started
        if whole or took > 1:
            what = "the whole window" if whole else "orders changed since the last round"
            log.info("KPI gauges read %s: %d orders in %.1f s", what, len(wanted), took)
        return domain.reports(self.tallies, self.reporting.rules, rejected)

    @staticmethod
    async def _read_again(conn: Conn, changed: repository.Changes, since: datetime, until: datetime) -> list[UUID]:
        """The orders changed, and those with a shipment of a SKU whose weight changed (as this round's snapshot sees
        them: a shipment it does not see is noted by its own transaction, for a later round)."""
        weighed = await repository.shipping(conn, changed.weights, since, until) if changed.weights else []
        return list(changed.orders.union(weighed))

    async def _changed(self, conn: Conn) -> repository.Changes | None:
        """What changed since the last round; None when it cannot be known (no round, or one too old)."""
        if not self.rounds or time.monotonic() - self.rounds[-1][0] > CHANGES_KEPT / 2:
            return None
        return await repository.changed_since(conn, self.rounds[-1][1])

    async def _forget(self, conn: Conn, taken: float, seen: str) -> None:
        """Keep this round's snapshot `seen` (taken at monotonic time `taken`: a snapshot's age is what the changes'
        keeping is about), and delete the changes an hour-old snapshot of this reader saw."""
        now = time.monotonic()
        self.rounds.append((taken, seen))
        old = None
        while len(self.rounds) > 1 and now - self.rounds[0][0] >= CHANGES_KEPT:
            old = self.rounds.popleft()[1]
        if old is not None:
            await repository.forget_changes(conn, old)

    def _put(self, order: domain.OrderFacts) -> None:
        was = self.orders.get(order.order_id)
        if was is not None:
            self.tallies[was.channel].count(was.counted, -1)
        now = Kept(sys.intern(order.channel), order.placed_at.timestamp(), domain.counted(order, self.reporting.rules))
        self.orders[order.order_id] = now
        tally = self.tallies.get(now.channel)
        if tally is None:  # not setdefault: that would make a tally for every order put
            tally = self.tallies[now.channel] = domain.Tally(self.reporting.rules)
        tally.count(now.counted)

    def _leave(self, since: datetime) -> None:
        """Orders placed before `since` leave the figures."""
        before = since.timestamp()
        for order_id in [order_id for order_id, kept in self.orders.items() if kept.placed < before]:
            gone = self.orders.pop(order_id)
            self.tallies[gone.channel].count(gone.counted, -1)
