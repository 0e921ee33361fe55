"""A warehouse's side of the OMS: pick tasks and their withdrawals in, picked / short picked / packed reports
(and return parcels received) out.

    worker = WarehouseWorker(Connection.from_env(), group="warehouses-ams")

    @worker.on_pick_task
    async def store(task: PickTaskReleased) -> None:
        ...  # put it in your WMS; return once it is safely yours (the record is committed after this returns)

    async with worker:
        ...
        await worker.picked(task)  # or short_picked(task, found), then packed(task, weight_grams)

Each report carries an event id derived from the task and the kind of report, so a report sent again (your
worker restarted before its commit and handled the task a second time) is the same event to the OMS, which
applies it once. Pick tasks arrive keyed by warehouse id, in release order per warehouse; pick higher
`priority` first."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage

from oms_kit.connection import CONSUMER_OPTIONS, Connection
from oms_kit.deadletters import DeadLetterFile, DeadLetters
from oms_kit.receiving import Handler, Receiver
from shared.contracts.events import (
    Contract,
    ItemQuantity,
    Package,
    PickTaskCancelled,
    PickTaskReleased,
    ReturnAuthorised,
    WarehouseReported,
    WarehouseReturnReceived,
)
from shared.contracts.topics import PICK_TASKS, RETURN_EVENTS, WAREHOUSE_EVENTS

# Event ids of reports: the same report of the same task is the same event, however often it is sent.
REPORT_NAMESPACE = uuid.UUID("0f6c1c0e-4a8e-4c55-b7d6-5a4e0d8c2f31")
BATCH = 500
H = TypeVar("H", bound=Callable[..., Awaitable[None]])


def report_event_id(*parts: object) -> str:
    return str(uuid.uuid5(REPORT_NAMESPACE, "/".join(str(part) for part in parts)))


class WarehouseWorker:
    def __init__(
        self,
        connection: Connection,
        *,
        group: str | None = None,
        warehouses: Collection[str] | None = None,
        returns: bool = False,
        dead_letters: DeadLetters | None = None,
        attempts: int = 5,
        backoff_seconds: float = 0.2,
    ) -> None:
        """`group`: your consumer group (the OMS grants groups starting with your principal's name; default: the
        principal's name). `warehouses`: the warehouse ids this worker serves (default all the principal may
        read). `returns`: also receive return authorisations (on_return_authorised). `dead_letters`: where
        records go that cannot be handled (default a JSON-lines file under ./dead-letters)."""
        self.group = group or connection.principal
        self.warehouses = frozenset(warehouses) if warehouses is not None else None
        self.broker = connection.broker()
        self.receiver = Receiver(
            dead_letters or DeadLetterFile(Path("dead-letters") / f"{self.group}.jsonl"),
            attempts=attempts,
            backoff_seconds=backoff_seconds,
        )
        self._handlers: dict[type[Contract], Handler] = {}
        self._reports = self.broker.publisher(
            WAREHOUSE_EVENTS.name,
            schema=WarehouseReported | WarehouseReturnReceived,
            title="warehouse reports",
            description=WAREHOUSE_EVENTS.description + " Key: the warehouse id.",
        )
        self.returns = returns
        self._subscribe([PICK_TASKS.name, *([RETURN_EVENTS.name] if returns else [])])

    def _subscribe(self, names: list[str]) -> None:
        """One subscriber (one consumer in the group) for every topic the worker reads."""
        handlers = self._handlers

        async def on_record(message: KafkaMessage) -> None:
            await self.receiver.receive(message, handlers)

        # In batches (what has arrived, up to BATCH records): one commit per batch, not one round trip per record.
        self.broker.subscriber(
            *names,
            group_id=self.group,
            batch=True,
            max_records=BATCH,
            ack_policy=AckPolicy.MANUAL,
            title="warehouse",
            description="What a warehouse receives: pick tasks and their withdrawals (key warehouse id), and return"
            " authorisations when the worker asked for them (other return events are skipped).",
            **CONSUMER_OPTIONS,
        )(on_record)

    # ---- what comes in ----

    def on_pick_task(self, handler: H) -> H:
        """`handler(task: PickTaskReleased)`: a task for one of your warehouses."""
        self._handlers[PickTaskReleased] = self._for_mine(handler)
        return handler

    def on_withdrawal(self, handler: H) -> H:
        """`handler(cancelled: PickTaskCancelled)`: stop picking that task if you have not packed it yet."""
        self._handlers[PickTaskCancelled] = self._for_mine(handler)
        return handler

    def on_return_authorised(self, handler: H) -> H:
        """`handler(authorised: ReturnAuthorised)`: a customer's return parcel is on its way to the warehouse on its
        label (a worker made with returns=True)."""
        if not self.returns:
            raise ValueError("make the worker with returns=True to receive return authorisations")
        self._handlers[ReturnAuthorised] = handler
        return handler

    def _for_mine(self, handler: Callable[[Any], Awaitable[None]]) -> Handler:
        async def mine(task: PickTaskReleased | PickTaskCancelled) -> None:
            if self.warehouses is None or task.warehouse_id in self.warehouses:
                await handler(task)

        return mine

    # ---- what goes out ----

    async def picked(self, task: PickTaskReleased, *, confirm: bool = True) -> asyncio.Future[Any] | None:
        """Every line of the task was found. With confirm=False the report is queued behind earlier ones (same
        warehouse, same order on the topic) and its delivery returned to await later."""
        return await self._report(task, "picked", task.lines, confirm=confirm)

    async def short_picked(
        self, task: PickTaskReleased, found: Sequence[ItemQuantity], *, confirm: bool = True
    ) -> asyncio.Future[Any] | None:
        """Only `found` was on the shelf (may be empty): the OMS re-routes or backorders the rest."""
        return await self._report(task, "short_picked", list(found), confirm=confirm)

    async def packed(
        self, task: PickTaskReleased, weight_grams: int, *, confirm: bool = True
    ) -> asyncio.Future[Any] | None:
        """The parcel is packed and weighed: the OMS chooses the carrier and ships it."""
        return await self._report(task, "packed", None, Package(weight_grams=weight_grams), confirm=confirm)

    async def return_received(self, report: WarehouseReturnReceived) -> None:
        """A return parcel was opened: what was in it and where each unit goes."""
        await self._reports.publish(
            report.model_dump(mode="json"),
            key=report.warehouse_id.encode(),
            headers={"event_id": report_event_id("return", report.rma, report.receipt)},
        )

    async def _report(
        self,
        task: PickTaskReleased,
        kind: Literal["picked", "packed", "short_picked"],
        lines: list[ItemQuantity] | None,
        package: Package | None = None,
        *,
        confirm: bool,
    ) -> asyncio.Future[Any] | None:
        report = WarehouseReported(
            pick_task_id=task.pick_task_id,
            warehouse_id=task.warehouse_id,
            kind=kind,
            lines=lines,
            package=package,
            occurred_at=datetime.now(UTC),
        )
        headers = {"event_id": report_event_id(task.pick_task_id, kind)}
        body = report.model_dump(mode="json", exclude_none=True)
        key = task.warehouse_id.encode()
        if confirm:
            await self._reports.publish(body, key=key, headers=headers)
            return None
        delivery: asyncio.Future[Any] = await self._reports.publish(body, key=key, headers=headers, no_confirm=True)
        return delivery

    # ---- running ----

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def __aenter__(self) -> WarehouseWorker:
        await self.start()
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()
