"""How the kit takes a record off a topic: decoded and validated exactly as the services do it (never raising,
whatever the bytes), handed to your handler as a typed contract, retried a bounded number of times when the
handler fails, set aside as a dead letter when it cannot be handled, and committed only after one of those.

FastStream's acknowledgement policies each lose or loop on some failure: ACK_FIRST (its default) commits before
the handler runs, ACK and REJECT_ON_ERROR commit a record whose handler failed as if it had been handled,
NACK_ON_ERROR seeks back to a record that will always fail and reads it forever, blocking its partition. The kit
subscribes with MANUAL and decides here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faststream.kafka.message import KafkaMessage

from oms_kit.deadletters import DeadLetter, DeadLetters
from shared.backbone.kafka import Undecodable, decode
from shared.contracts.events import Contract

log = logging.getLogger("oms_kit")
MAX_RECORD_BYTES = 1024 * 1024
Handler = Callable[[Any], Awaitable[None]]


class Receiver:
    def __init__(self, dead_letters: DeadLetters, *, attempts: int = 5, backoff_seconds: float = 0.2) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.dead_letters = dead_letters
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds

    async def receive(self, message: KafkaMessage, handlers: Mapping[type[Contract], Handler]) -> None:
        """Each record of the message (one, or a batch) handled or set aside, in order; then one commit."""
        raw = message.raw_message
        for record in raw if isinstance(raw, tuple | list) else (raw,):
            letter = await self._take(record, handlers)
            if letter is not None:
                await self._set_aside(message, letter)
        await message.ack()

    async def _take(self, record: Any, handlers: Mapping[type[Contract], Handler]) -> DeadLetter | None:
        """None once the record was handled (or is an event this party does not act on); else the dead letter."""
        decoded = decode(record, MAX_RECORD_BYTES)
        if isinstance(decoded, Undecodable):
            return DeadLetter.of(record, decoded.reason)
        handler = handlers.get(type(decoded.payload))
        if handler is None:
            return None
        failure = await self._handle(handler, decoded.payload)
        return None if failure is None else DeadLetter.of(record, failure)

    async def _handle(self, handler: Handler, payload: Contract) -> str | None:
        """None once the handler succeeded; why not after the last attempt."""
        for attempt in range(1, self.attempts + 1):
            try:
                await handler(payload)
                return None
            except Exception as exc:  # the handler's own failure (its store, its network): try again, then set aside
                # The class only: an exception's text may carry the record's personal data.
                why = exc.__class__.__name__
                if attempt == self.attempts:
                    return f"handler failed {self.attempts} times, last with {why}"
                log.warning("%s handler failed (%s), attempt %d of %d", payload.event_type, why, attempt, self.attempts)
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _set_aside(self, message: KafkaMessage, letter: DeadLetter) -> None:
        try:
            await self.dead_letters.put(letter)
        except Exception:
            # Not kept: read the records again (from the first of the message) rather than commit past this one;
            # those before it are handled again, which the reports' stable event ids make harmless.
            log.exception("could not keep a dead letter for %s[%d]@%d", letter.topic, letter.partition, letter.offset)
            await message.nack()
            raise
