"""Orders submitted over HTTP, written to the database together (group commit).

Each request used to be its own transaction, so HTTP intake paid a commit (a WAL flush) and a round of statements per
order, and saturated at about half the rate the Kafka intake drains. Here a request joins a queue; one writer takes
everything waiting, writes it with `intake_all` in one transaction, and answers each request with its own outcome.
Nothing waits on purpose: when idle a request is written at once, and under load the requests that arrive while one
round commits make up the next.

A round that fails is written again one order per transaction, so a fault of one order (or a conflict) answers that
request alone, as before.

Orders that come as a platform's webhook (Shopify) go through the same rounds, the delivery's id recorded with the
order in the round's transaction, so that a redelivery is known as one: the round looks up its deliveries' ids first
and answers those it knows with the order they made.

The queue is bounded in time: when the rounds of the orders already waiting would take longer than `wait_limit`, at
the time the last rounds took, a new order is refused at once (`Busy`, answered 503 with Retry-After) rather than kept
waiting. Unbounded, the answers slowed with the queue, clients opened connection after connection, and past the
listen backlog the kernel reset them: the client could not tell whether its order was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.backbone import aftercommit
from shared.backbone.http import reply
from shared.contracts.events import SubmittedOrder

from . import repository
from .handlers import Accepted, CaptureHandlers
from .metrics import INTAKE_BUSY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookDelivery:
    """The platform's delivery an order came in (its id, and the shop that sent it)."""

    webhook_id: str
    shop: str


class Waiting(NamedTuple):
    """An order in the queue: the delivery it came in (if a webhook's), and its caller's future answer."""

    order: SubmittedOrder
    webhook: WebhookDelivery | None
    outcome: asyncio.Future[Accepted]


# How much each round's time counts against the estimate before it: a few rounds make the estimate.
ROUND_WEIGHT = 0.3
# Never more waiting than this, whatever the estimate says (memory stays bounded before a round is timed, or if
# rounds stall).
MOST_WAITING = 5000


class Busy(Exception):
    """The intake's queue is full: the order was not taken, the client may send it again after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the intake is busy; retry after {retry_after} s")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class Submissions:
    def __init__(
        self,
        pool: Callable[[], Any],
        handlers: CaptureHandlers,
        *,
        round_size: int,
        wait_limit: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool  # the runtime's pool, looked up when used: it exists once the service has started
        self.handlers = handlers
        self.round_size = round_size
        self.wait_limit = wait_limit
        self.clock = clock
        self.waiting: list[Waiting] = []
        self.writing = 0  # orders in the round being written
        self.arrived = 0  # intake requests come in and not yet answered (`answering`)
        self.writer: asyncio.Task[None] | None = None
        self.round_seconds: float | None = None  # how long a round takes to write, once one has been timed

    def unanswered(self) -> int:
        """Orders taken and not yet answered: every intake request from when it came in (its body still to read, its
        caller to authenticate, its order to validate) to its answer, or, submitted otherwise, those waiting and
        those of the round being written. Counted from the queue alone, the backlog stayed under the peak rule's
        high mark for the first 6 s of Shopify's 400/s while its webhooks' answers took up to 3.6 s: about 250
        requests at a time were on their way to the queue (round 28)."""
        return max(self.arrived, len(self.waiting) + self.writing)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """An intake request from when it comes in to its answer, counted as unanswered meanwhile."""
        self.arrived += 1
        try:
            yield
        finally:
            self.arrived -= 1

    def expected_wait(self) -> float:
        """Seconds the rounds of the orders waiting now would take to write (0 until a round has been timed)."""
        if self.round_seconds is None:
            return 0.0
        return math.ceil(len(self.waiting) / self.round_size) * self.round_seconds

    def refusal(self) -> Busy | None:
        """Why a new order would be refused now (the queue is full), or None."""
        wait = self.expected_wait()
        if wait > self.wait_limit or len(self.waiting) >= MOST_WAITING:
            return Busy(max(1, math.ceil(wait - self.wait_limit)))
        return None

    async def submit(self, order: SubmittedOrder, webhook: WebhookDelivery | None = None) -> Accepted:
        """The order's outcome once the round it went into has committed; `Busy` when the queue is full."""
        if (busy := self.refusal()) is not None:
            raise busy
        outcome: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self.waiting.append(Waiting(order, webhook, outcome))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_rounds())
        return await outcome

    async def _write_rounds(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[: self.round_size], self.waiting[self.round_size :]
            started = self.clock()
            self.writing = len(batch)
            try:
                await self._round(batch)
            except BaseException as exc:  # the service is stopping: nobody is left without an answer
                for waiting in batch:
                    _settle(waiting.outcome, error=exc)
                raise
            finally:
                self.writing = 0
            self._timed(self.clock() - started)

    def _timed(self, seconds: float) -> None:
        known = self.round_seconds
        self.round_seconds = seconds if known is None else ROUND_WEIGHT * seconds + (1 - ROUND_WEIGHT) * known

    async def _round(self, batch: list[Waiting]) -> None:
        try:
            outcomes = await self._write(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].outcome, error=exc)
                return
            log.warning("a round of %d submitted orders failed (%s); writing them one by one", len(batch), exc)
            for waiting in batch:
                try:
                    (accepted,) = await self._write([waiting])
                except Exception as single:
                    _settle(waiting.outcome, error=single)
                else:
                    _settle(waiting.outcome, accepted)
            return
        for waiting, accepted in zip(batch, outcomes, strict=True):
            _settle(waiting.outcome, accepted)

    async def _write(self, batch: list[Waiting]) -> list[Accepted]:
        async with self.pool().acquire() as conn, aftercommit.transaction(conn):
            # Once a round, not in each webhook's request: a statement there took a pooled connection and a commit
            # per order, and held Shopify's intake below the API's.
            made = await repository.orders_of_webhooks(
                conn, [waiting.webhook.webhook_id for waiting in batch if waiting.webhook is not None]
            )

            def made_before(waiting: Waiting) -> tuple[UUID, str] | None:
                """The order a delivery made before, whatever its body says now."""
                return None if waiting.webhook is None else made.get(waiting.webhook.webhook_id)

            new = [waiting for waiting in batch if made_before(waiting) is None]
            taken = await self.handlers.intake_all(conn, [(waiting.order, None) for waiting in new]) if new else []
            deliveries = [
                (waiting.webhook.webhook_id, waiting.webhook.shop, accepted.order_id)
                for waiting, accepted in zip(new, taken, strict=True)
                if waiting.webhook is not None
            ]
            if deliveries:
                await repository.record_webhooks(conn, deliveries)
            outcomes = iter(taken)
            return [
                next(outcomes) if (known := made_before(waiting)) is None else Accepted(*known, duplicate=True)
                for waiting in batch
            ]


def _settle(
    outcome: asyncio.Future[Accepted], accepted: Accepted | None = None, error: BaseException | None = None
) -> None:
    if outcome.done():  # the client went away: the order is written all the same, nobody waits for the answer
        return
    if error is not None:
        outcome.set_exception(error)
    else:
        assert accepted is not None
        outcome.set_result(accepted)


# The channel label of an order refused before its body (which names the channel) was read.
UNREAD = "unread"


class RefuseWhenBusy:
    """Answers a new order 503 with Retry-After while the queue is full, before its body is read, its caller
    authenticated or the order validated: refused in the route, an order cost capture about as much CPU as an
    accepted one, and under overload the refusals took the CPU the accepted orders needed. Each request it lets
    through counts as unanswered until it is answered (`Submissions.unanswered`). `intakes`: the paths that take new
    orders, each with its channel when the path names it (else the channel is in the unread body)."""

    def __init__(self, app: ASGIApp, submissions: Submissions, intakes: dict[str, str | None]) -> None:
        self.app = app
        self.submissions = submissions
        self.intakes = intakes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.intakes:
            busy = self.submissions.refusal()
            if busy is not None:
                INTAKE_BUSY.labels(self.intakes[scope["path"]] or UNREAD).inc()
                await reply(send, 503, {"detail": str(busy)}, busy.headers)
                return
            with self.submissions.answering():
                await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)
