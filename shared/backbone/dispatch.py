"""A work loop woken by PostgreSQL NOTIFY, with a periodic poll as the source of truth.

Used by the outbox relay and by the notification sender: `step` does one batch and returns how many
items it handled; a full batch runs again at once, otherwise the loop waits for a notification or the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from shared.backbone.db import connect
from shared.backbone.settings import CommonSettings

log = logging.getLogger(__name__)


async def run_dispatch(
    settings: CommonSettings,
    channel: str | None,
    step: Callable[[], Awaitable[int]],
    batch: int,
    wake: asyncio.Event | None = None,
) -> None:
    """`channel`: the NOTIFY channel to listen on (None: none, woken by `wake` and the poll alone). `wake`: an event
    this process sets too when it has work for `step`."""
    wake = wake or asyncio.Event()
    listener = (
        None if channel is None else asyncio.create_task(_listen(settings, channel, wake), name=f"listen-{channel}")
    )
    label = channel or getattr(step, "__qualname__", "dispatch")
    try:
        failures = 0
        while True:
            try:
                done = await step()
                failures = 0
            except Exception as exc:  # broker, SMTP or database unavailable: back off and try again
                failures += 1
                log.warning("%s step failed (%s), retry %d", label, exc.__class__.__name__, failures)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures) * (0.5 + random.random()))
                continue
            if done < batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), settings.outbox_poll_seconds)
                wake.clear()
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def _listen(settings: CommonSettings, channel: str, wake: asyncio.Event) -> None:
    # LISTEN needs a connection of its own: a pooled one is UNLISTENed when released.
    while True:
        try:
            conn = await connect(settings)
            try:
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(channel, lambda *_: wake.set())
                wake.set()  # catch up on whatever was written while not listening
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()
        except Exception as exc:  # the periodic poll keeps the work going meanwhile
            log.warning("listener on %s lost (%s), reconnecting", channel, exc.__class__.__name__)
        await asyncio.sleep(1.0)
