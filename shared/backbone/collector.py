"""Garbage collector settings for the long-running processes (the services and the local stand-ins)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# Allocations between two collections of the youngest objects (Python's default: 700).
YOUNG_COLLECTION_EVERY = 10_000


def settle_collector() -> None:
    """Keep what the process made while starting (modules, settings, the app: it lives as long as the
    process) out of the garbage collector's scans, and collect young objects less often: a batch makes and
    drops many thousands of small objects, and the profiles showed 10-19% of a service's time collecting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


class LongLived:
    """Keeps what a process holds for long out of the collector's full scans. The KPI service keeps the facts of
    every order of the last day (hundreds of thousands of objects); each full collection walked all of them, 0.35-0.5 s
    of CPU and up to 1.8 s of its event loop on a busy machine, every 10-60 s at a peak, and found nothing to free.
    `settle` once the process has built more of what it keeps: everything tracked is frozen (a move of lists, no
    scan). A frozen object that is dropped is still freed by its reference count; one that is garbage only as part of
    a cycle waits for the full collection that `settle` runs once every `full_every` seconds, everything unfrozen."""

    def __init__(self, full_every: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.full_every = full_every
        self.clock = clock
        self.last_full = clock()

    def settle(self) -> None:
        now = self.clock()
        if now - self.last_full >= self.full_every:
            gc.unfreeze()
            gc.collect()
            self.last_full = now
        gc.freeze()
