"""The event loop watch observes how long something held the loop: Python work that never awaits keeps every other
task of the service waiting, and shows as a timer that fired late."""

from __future__ import annotations

import asyncio
import contextlib
import time

from shared.backbone.runtime import watch_event_loop


def work_without_awaiting(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_a_hold_of_the_loop_is_observed_as_how_late_the_timer_fired() -> None:
    observed: asyncio.Queue[float] = asyncio.Queue()
    watch = asyncio.create_task(watch_event_loop(observed.put_nowait, tick=0.01))
    try:
        await asyncio.wait_for(observed.get(), timeout=5)  # the watch is timing its ticks
        work_without_awaiting(0.3)
        late = await asyncio.wait_for(observed.get(), timeout=5)  # the tick the work delayed
        assert 0.25 <= late < 0.5
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
