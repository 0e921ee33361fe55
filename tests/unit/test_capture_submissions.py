"""HTTP submissions written together: one transaction for the requests waiting, each answered with its own outcome,
and a failing round written again one order at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.types import Message

from services.capture.handlers import Accepted
from services.capture.submissions import Busy, RefuseWhenBusy, Submissions, WebhookDelivery
from shared.contracts.events import SubmittedOrder
from tests.factories import order_document


class Connection:
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class Pool:
    """A new connection for every round, or always the one given."""

    def __init__(self, conn: Connection | None = None) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        yield self.conn or Connection()


class Intake:
    """Stands in for CaptureHandlers.intake_all: records each transaction's orders; refuses a poisoned one."""

    def __init__(self, poisoned: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.rounds: list[list[str]] = []
        self.poisoned = poisoned

    async def intake_all(self, conn: Any, orders: list[tuple[SubmittedOrder, None]]) -> list[Accepted]:
        await asyncio.sleep(0)  # a commit takes time: requests arriving meanwhile wait for the next round
        ids = [order.external_id for order, _ in orders]
        self.rounds.append(ids)
        if poisoned := self.poisoned.intersection(ids):
            raise ValueError(f"cannot write {sorted(poisoned)}")
        return [Accepted(uuid.uuid5(uuid.NAMESPACE_URL, i), "validated", False) for i in ids]


def submissions_of(
    intake: Intake, round_size: int = 200, wait_limit: float = 60.0, conn: Connection | None = None, **kw: Any
) -> Submissions:
    """Submissions written by `intake` (on `conn` if given); rounds of 200 and a limit no test reaches unless it says
    otherwise."""
    handlers: Any = intake  # stands in for CaptureHandlers
    return Submissions(lambda: Pool(conn), handlers, round_size=round_size, wait_limit=wait_limit, **kw)


def order(external_id: str) -> SubmittedOrder:
    return SubmittedOrder.model_validate({**order_document([("SKU-1", 1)]), "external_id": external_id})


async def test_requests_waiting_together_are_written_in_one_transaction_and_each_gets_its_own_outcome() -> None:
    intake = Intake()
    submissions = submissions_of(intake)

    outcomes = await asyncio.gather(*(submissions.submit(order(f"W-{n}")) for n in range(5)))

    assert intake.rounds == [["W-0", "W-1", "W-2", "W-3", "W-4"]]
    assert [o.order_id for o in outcomes] == [uuid.uuid5(uuid.NAMESPACE_URL, f"W-{n}") for n in range(5)]


class Deliveries(Connection):
    """A connection to the deliveries recorded so far: what the round's two statements about them read and write."""

    def __init__(self) -> None:
        self.made: dict[str, tuple[uuid.UUID, str]] = {}

    async def fetch(self, query: str, webhook_ids: list[str]) -> list[dict[str, Any]]:
        assert "FROM shopify_webhooks" in query
        return [
            {"webhook_id": w, "order_id": self.made[w][0], "status": self.made[w][1]}
            for w in webhook_ids
            if w in self.made
        ]

    async def execute(self, query: str, webhook_ids: list[str], shops: list[str], order_ids: list[uuid.UUID]) -> None:
        assert query.startswith("INSERT INTO shopify_webhooks")
        self.made.update({w: (o, "validated") for w, o in zip(webhook_ids, order_ids, strict=True)})


async def test_a_redelivered_webhook_is_answered_with_the_order_it_made_and_only_new_orders_are_taken() -> None:
    # given a round's connection that knows one earlier delivery
    intake, conn = Intake(), Deliveries()
    earlier = uuid.uuid4()
    conn.made["delivered-before"] = (earlier, "allocated")

    submissions = submissions_of(intake, conn=conn)

    # when that delivery comes again in a round with a new delivery and an order sent to the API
    again, first, api = await asyncio.gather(
        submissions.submit(order("S-1"), WebhookDelivery("delivered-before", "shop.example")),
        submissions.submit(order("S-2"), WebhookDelivery("new-delivery", "shop.example")),
        submissions.submit(order("A-1")),
    )

    # then the redelivery gets the order it made, not taken again; the others are taken and the new one recorded
    assert again == Accepted(earlier, "allocated", duplicate=True)
    assert intake.rounds == [["S-2", "A-1"]]
    assert (first.duplicate, api.duplicate) == (False, False)
    assert conn.made["new-delivery"] == (first.order_id, "validated")


async def test_requests_arriving_while_a_round_commits_go_into_the_next_round() -> None:
    intake = Intake()
    submissions = submissions_of(intake, round_size=2)

    await asyncio.gather(*(submissions.submit(order(f"R-{n}")) for n in range(5)))

    assert intake.rounds == [["R-0", "R-1"], ["R-2", "R-3"], ["R-4"]]


async def test_a_failing_round_is_written_again_one_by_one_and_only_the_faulty_request_fails() -> None:
    intake = Intake(poisoned={"BAD"})
    submissions = submissions_of(intake)

    outcomes = await asyncio.gather(
        *(submissions.submit(order(i)) for i in ("OK-1", "BAD", "OK-2")), return_exceptions=True
    )

    assert isinstance(outcomes[1], ValueError)
    assert [o.order_id for o in (outcomes[0], outcomes[2])] == [  # type: ignore[union-attr]
        uuid.uuid5(uuid.NAMESPACE_URL, i) for i in ("OK-1", "OK-2")
    ]
    assert intake.rounds == [["OK-1", "BAD", "OK-2"], ["OK-1"], ["BAD"], ["OK-2"]]


async def test_a_request_whose_client_went_away_does_not_stop_the_others() -> None:
    intake = Intake()
    submissions = submissions_of(intake)
    gone = asyncio.create_task(submissions.submit(order("GONE")))
    staying = asyncio.create_task(submissions.submit(order("STAYING")))
    await asyncio.sleep(0)
    gone.cancel()

    accepted = await staying

    assert accepted.order_id == uuid.uuid5(uuid.NAMESPACE_URL, "STAYING")
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert intake.rounds == [["GONE", "STAYING"]]  # written all the same: the request reached the queue


class SlowIntake(Intake):
    """Each round takes one second of a clock the test reads, and ends when the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.gate = asyncio.Event()

    async def intake_all(self, conn: Any, orders: list[tuple[SubmittedOrder, None]]) -> list[Accepted]:
        await self.gate.wait()
        self.gate.clear()
        self.now += 1.0
        return await super().intake_all(conn, orders)

    async def finish(self, *tasks: asyncio.Task[Accepted]) -> list[Accepted]:
        """Let round after round end until these submissions have their outcome (a bounded number of loop turns:
        a submission that never ends fails the test instead of hanging it)."""
        for _ in range(1000):
            if all(task.done() for task in tasks):
                break
            self.gate.set()
            await asyncio.sleep(0)
        self.gate.clear()  # the next round waits for the test again
        assert all(task.done() for task in tasks), "submissions still waiting after 1,000 loop turns"
        return await asyncio.gather(*tasks)


async def test_an_order_that_would_wait_past_the_limit_is_refused_at_once_and_not_written() -> None:
    intake = SlowIntake()
    submissions = submissions_of(intake, round_size=2, wait_limit=1.0, clock=lambda: intake.now)
    first = [asyncio.create_task(submissions.submit(order(f"F-{n}"))) for n in range(2)]
    await intake.finish(*first)  # a round takes 1 s
    writing = [asyncio.create_task(submissions.submit(order(f"W-{n}"))) for n in range(2)]
    await asyncio.sleep(0)  # taken by the writer: the queue is empty again
    queued = [asyncio.create_task(submissions.submit(order(f"Q-{n}"))) for n in range(3)]  # 2 rounds: 2 s
    await asyncio.sleep(0)

    late = asyncio.create_task(submissions.submit(order("LATE")))
    await asyncio.sleep(0)

    assert late.done()  # answered at once, no round had to end
    with pytest.raises(Busy) as refused:
        late.result()

    assert refused.value.retry_after == 1  # the queue is back under its limit within a second
    await intake.finish(*writing, *queued)
    assert "LATE" not in [i for r in intake.rounds for i in r]
    assert intake.rounds == [["F-0", "F-1"], ["W-0", "W-1"], ["Q-0", "Q-1"], ["Q-2"]]


async def test_nothing_is_refused_before_a_round_has_been_timed() -> None:
    intake = SlowIntake()
    submissions = submissions_of(intake, round_size=2, wait_limit=0.001, clock=lambda: intake.now)
    tasks = [asyncio.create_task(submissions.submit(order(f"S-{n}"))) for n in range(5)]
    await asyncio.sleep(0)  # every one submitted before the first round ends

    outcomes = await intake.finish(*tasks)

    assert len(outcomes) == 5


class FullQueue:
    """Stands in for Submissions whose queue is full (or not)."""

    def __init__(self, busy: bool) -> None:
        self.busy = busy

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        yield

    def refusal(self) -> Busy | None:
        return Busy(3) if self.busy else None


async def _call(middleware: RefuseWhenBusy, method: str, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the body was read")

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    return sent


async def test_a_new_order_is_refused_before_its_body_is_read_while_the_queue_is_full() -> None:
    reached: list[str] = []

    async def application(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    full = RefuseWhenBusy(application, FullQueue(True), {"/v1/orders": None})  # type: ignore[arg-type]

    refused = await _call(full, "POST", "/v1/orders")
    other_path = await _call(full, "POST", "/v1/orders/1/cancel")
    other_method = await _call(full, "GET", "/v1/orders")
    taken = await _call(RefuseWhenBusy(application, FullQueue(False), {"/v1/orders": None}), "POST", "/v1/orders")  # type: ignore[arg-type]

    start, body = refused
    assert start["status"] == 503
    assert (b"retry-after", b"3") in start["headers"]
    assert json.loads(body["body"]) == {"detail": "the intake is busy; retry after 3 s"}
    assert other_path == other_method == taken == []
    assert reached == ["/v1/orders/1/cancel", "/v1/orders", "/v1/orders"]


async def test_an_intake_request_counts_as_unanswered_from_when_it_comes_in_to_its_answer() -> None:
    # The peak rule's backlog counts them: a request on its way to the queue (its body to read, its caller to
    # authenticate, its order to validate) waits as much as one in it.
    submissions = submissions_of(Intake())
    seen: dict[str, int] = {}
    let_go = asyncio.Event()

    async def application(scope: Any, receive: Any, send: Any) -> None:
        seen[scope["path"]] = submissions.unanswered()
        if scope["path"] == "/v1/orders":
            await let_go.wait()
        if scope["path"] == "/v1/channels/shopify/orders":
            raise RuntimeError("the route failed")

    middleware = RefuseWhenBusy(
        application, submissions, {"/v1/orders": None, "/v1/channels/shopify/orders": "shopify"}
    )
    first = asyncio.create_task(_call(middleware, "POST", "/v1/orders"))
    second = asyncio.create_task(_call(middleware, "POST", "/v1/orders"))
    await asyncio.sleep(0)
    assert submissions.unanswered() == 2
    await _call(middleware, "POST", "/v1/orders/1/cancel")  # not an intake
    assert seen["/v1/orders/1/cancel"] == 2
    with pytest.raises(RuntimeError):
        await _call(middleware, "POST", "/v1/channels/shopify/orders")
    assert seen["/v1/channels/shopify/orders"] == 3
    assert submissions.unanswered() == 2  # the failed request is answered (with the error): not counted any more
    let_go.set()
    await asyncio.gather(first, second)
    assert submissions.unanswered() == 0


async def test_orders_submitted_past_the_middleware_still_count_while_they_wait() -> None:
    submissions = submissions_of(Intake())
    waiting = asyncio.create_task(submissions.submit(order("A-1")))
    await asyncio.sleep(0)
    assert submissions.unanswered() == 1  # in the queue, though no request was counted coming in
    await waiting
    assert submissions.unanswered() == 0
