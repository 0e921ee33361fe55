"""Deadline-bounded waiting for asynchronous outcomes: poll a probe until it holds, or fail saying what was seen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    probe: Callable[[], Awaitable[Any] | Any],
    until: Callable[[Any], bool],
    *,
    timeout: float = 30.0,
    every: float = 0.1,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if inspect.isawaitable(seen):
            seen = await seen
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:.0f}s; last seen: {seen!r}")
        await asyncio.sleep(every)


def eventually_sync(probe: Callable[[], Any], until: Callable[[Any], bool], *, timeout: float = 30.0) -> Any:
    """`eventually` for synchronous code (fixtures and tests that run no event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:.0f}s; last seen: {seen!r}")
        time.sleep(0.2)
