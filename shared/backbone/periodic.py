"""Gauges worked out from the database now and then (KPIs, return rates), kept from crowding out the pipeline.

Such a refresh reads a window of history, so its cost grows with the volume of orders: at a few hundred thousand
orders a day one round took 15 s of database time, every 30 s. The pause after a round therefore grows with what
the round took, so that refreshing never takes more than a set share of the time, whatever the volume; the
gauges are then a little older, and the orders flow on.

A round is also put off while the order path is behind (shared/backbone/peak.py), as what follows it waits: late
in a full bench a KPI round took 6.5-27 s of a shared machine (about 175,000 orders in its window), time the order
path needs at a peak (docs/benchmarks/findings.md, round 18); the KPI gauges now read only what changed
(services/kpis/window.py), the return rates their totals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.backbone.peak import OrderPathWatch

log = logging.getLogger(__name__)
# At most this share of the time goes to refreshing (a round of 3 s is followed by a pause of 57 s).
SHARE = 0.05


def pause_after(took: float, every: float, share: float = SHARE) -> float:
    """Seconds to wait after a round that took `took` seconds: `every`, or longer when the round was slow."""
    return max(every, took * (1 / share - 1))


async def give_way(order_path: OrderPathWatch | None, what: str) -> None:
    """Return at once, or once the order path has caught up when its watch says it is behind."""
    if order_path is not None and order_path.waiting:
        log.info("%s put off while the order path is behind", what)
        await order_path.caught_up.wait()


async def refresh_every(
    what: str,
    every: float,
    refresh: Callable[[], Awaitable[None]],
    order_path: OrderPathWatch | None = None,
    share: float | None = SHARE,
) -> None:
    """Run `refresh` every `every` seconds, for good, each round put off while the `order_path` watch says it is
    behind; less often when a round is slow, so that rounds take at most `share` of the time (see `pause_after`;
    None: a round costs what changed since the last, which waiting longer does not make less). A failing round is
    logged and the next one tries again: the database may be away for a while."""
    while True:
        await give_way(order_path, what)
        started = time.monotonic()
        try:
            await refresh()
        except Exception as exc:
            log.warning("%s not refreshed (%s)", what, exc.__class__.__name__)
        took = time.monotonic() - started
        pause = every if share is None else pause_after(took, every, share)
        if pause > every:
            log.info("%s took %.1f s to refresh: next round in %.0f s", what, took, pause)
        await asyncio.sleep(pause)
