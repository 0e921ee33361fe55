"""Fulfillment's handlers: release pick tasks with their promised delivery date, follow the warehouse's
picking (short picks included) and packing, ship with the carrier service the rate table chooses, follow the
carrier to delivery or exception, and withdraw pick tasks when an order is cancelled in time.

Every decision about an order's pick tasks holds the order's lock row (taken for the whole batch in `prepare`),
so an instance releasing a task and another cancelling the whole order decide one after the other: the task
is withdrawn by the cancellation, or born withdrawn. Carrier reports hold it too: two instances recording the
deliveries of an order's last two parcels decide one after the other, and the second sees the order delivered."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from shared.backbone.consumer import Routes, one_at_a_time
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import Envelope, wrap
from shared.contracts.topics import Topic
from shared.reference import promises
from shared.reference.suppliers import Suppliers
from shared.reference.warehouses import Warehouse

from . import change_repository, changes, domain, dropship, dropship_repository, metrics, repository, tracking
from .dropship_handlers import DropshipHandlers
from .rates import ShippingRules
from .settings import Clock

log = logging.getLogger(__name__)
Outgoing = list[tuple[Topic, str, Envelope]]


class FulfillmentHandlers:
    def __init__(
        self,
        rules: ShippingRules,
        warehouses: Mapping[str, Warehouse],
        clock: Clock,
        suppliers: Suppliers | None = None,
    ) -> None:
        self.rules = rules
        self.warehouses = dict(warehouses)
        self.clock = clock
        self.dropship = DropshipHandlers(rules, suppliers or Suppliers(), clock)

    def _warehouse(self, warehouse_id: str) -> Warehouse:
        warehouse = self.warehouses.get(warehouse_id)
        if warehouse is None:
            raise LookupError(f"warehouse {warehouse_id} is not configured")
        return warehouse

    def _event(self, payload: ev.Contract, order_id: UUID, msg: Inbound[Any]) -> Envelope:
        """An event to emit; what it stands for is counted when the transaction writing it commits."""
        metrics.count_emitted(payload)
        return wrap(payload, order_id=order_id, cause=msg.envelope, occurred_at=self.clock())

    async def prepare(self, conn: Conn, batch: list[Inbound[Any]]) -> None:
        """Lock, in one global order, every order whose pick tasks this batch may release, withdraw or move on,
        or whose delivery it may decide."""
        orders: set[UUID] = set()
        tasks: set[UUID] = set()
        parcels: set[str] = set()
        purchase_orders: set[UUID] = set()
        for item in batch:
            match item.payload:
                case (
                    ev.OrderAllocated(order_id=order_id)
                    | ev.OrderCancellationRequested(order_id=order_id)
                    | ev.WithdrawalRequested(order_id=order_id)
                    | ev.OrderChangeRequested(order_id=order_id)
                ):
                    orders.add(order_id)
                case ev.WarehouseReported(pick_task_id=pick_task_id):
                    tasks.add(pick_task_id)
                case ev.CarrierReported(tracking_number=tracking_number):
                    # Whether the order is delivered depends on its other parcels, whose reports another
                    # instance may be recording at this moment (carrier events are keyed by parcel).
                    parcels.add(tracking_number)
                case ev.SupplierReported(purchase_order_id=purchase_order_id):
                    purchase_orders.add(purchase_order_id)
        if purchase_orders:
            orders |= await dropship_repository.orders_of(conn, purchase_orders)
        if tasks:
            orders |= await repository.orders_of_tasks(conn, tasks)
        if parcels:
            orders |= await repository.orders_of_shipments(conn, parcels)
        await repository.lock_orders(conn, orders)

    async def on_order_allocated(self, conn: Conn, msgs: list[Inbound[ev.OrderAllocated]]) -> None:
        """Release the batch's new shipments as pick tasks, written with one statement. A shipment allocated
        after the whole order was cancelled is withdrawn before any warehouse sees it: the order's lock (taken
        in `prepare`) makes a cancellation another instance is deciding either visible here or see this task."""
        cancelled = await repository.whole_order_cancellations(conn, (m.payload.order_id for m in msgs))
        changed = await change_repository.latest(conn, (m.payload.order_id for m in msgs))
        new: dict[UUID, repository.NewTask] = {}  # by shipment: a shipment read twice is released once
        for msg in msgs:
            allocated = msg.payload
            released_at = self.clock()
            for shipment in allocated.shipments:
                if shipment.shipment_id in new:
                    continue
                task = ev.PickTaskReleased(
                    pick_task_id=shipment.shipment_id,
                    order_id=allocated.order_id,
                    warehouse_id=shipment.warehouse_id,
                    lines=shipment.lines,
                    ship_to=allocated.ship_to,
                    service_level=allocated.service_level,
                    created_at=released_at,
                    priority=allocated.priority,
                    order_version=allocated.order_version,
                )
                cutoff = self._warehouse(shipment.warehouse_id).cutoff
                promise = promises.promised_delivery(allocated.service_level, released_at, cutoff, self.rules)
                withdrawn_by = cancelled.get(allocated.order_id) or superseded(changed, allocated)
                new[shipment.shipment_id] = repository.NewTask(task, promise, withdrawn_by)
        inserted = await repository.insert_pick_tasks(conn, list(new.values()))  # not those released before
        await change_repository.stamp_version(conn, {i: new[i].task.order_version for i in inserted})
        outgoing: Outgoing = []
        for msg in msgs:
            allocated = msg.payload
            withdrawn: list[UUID] = []
            for shipment in allocated.shipments:
                if shipment.shipment_id not in inserted:
                    continue
                inserted.discard(shipment.shipment_id)  # announced once, by the first record that carries it
                task = new[shipment.shipment_id].task
                if new[shipment.shipment_id].cancel_reason is None:
                    outgoing.append((topics.PICK_TASKS, shipment.warehouse_id, self._event(task, task.order_id, msg)))
                else:
                    withdrawn.append(shipment.shipment_id)
            if withdrawn and allocated.order_id not in cancelled:
                # Reserved under an older version of the order: allocation re-allocates it under the change.
                outgoing.append(
                    self._order_event(accepted_again(changed[allocated.order_id], withdrawn), allocated.order_id, msg)
                )
            elif withdrawn:
                accepted = ev.CancellationAccepted(
                    order_id=allocated.order_id, withdrawn_shipments=withdrawn, reason=cancelled[allocated.order_id]
                )
                outgoing.append(self._order_event(accepted, allocated.order_id, msg))
        await enqueue(conn, outgoing)
        await self.dropship.on_order_allocated(conn, msgs, cancelled)

    def _order_event(self, payload: ev.Contract, order_id: UUID, msg: Inbound[Any]) -> tuple[Topic, str, Envelope]:
        return topics.FULFILLMENT_EVENTS, str(order_id), self._event(payload, order_id, msg)

    async def on_warehouse_reported(self, conn: Conn, msgs: list[Inbound[ev.WarehouseReported]]) -> None:
        """Follow the batch's warehouse reports in the order read, in a fixed number of statements: every task of
        their orders locked at once, each report applied to its task as the reports before it left it (a batch may
        hold a task's `picked` and its `packed`), then the reports' records, the tasks, the shipments and the
        events written one statement each. A late or repeated report is recorded, never an error."""
        reports = [m.payload for m in msgs]
        rows = {
            r["pick_task_id"]: r for r in await repository.lock_tasks_of_orders(conn, (r.pick_task_id for r in reports))
        }
        for report in reports:
            found = rows.get(report.pick_task_id)
            if found is None or found["warehouse_id"] != report.warehouse_id:
                raise LookupError(f"no pick task {report.pick_task_id} at warehouse {report.warehouse_id}")
        packing = {rows[r.pick_task_id]["order_id"] for r in reports if r.kind == "packed"}
        purchase_orders = await dropship_repository.statuses_of_orders(conn, packing) if packing else {}
        elsewhere = {o: [dropship.as_task_status(s) for s in statuses] for o, statuses in purchase_orders.items()}
        outcomes = domain.follow_reports(map(repository.picking, rows.values()), reports, elsewhere)
        leaving = {
            i: self._carrier_service(rows[outcome.task.pick_task_id], reports[i])
            for i, outcome in enumerate(outcomes)
            if outcome.applied and outcome.task.status == domain.SHIPPED
        }
        serials = iter(await repository.next_tracking_serials(conn, len(leaving)))
        shipments: list[repository.NewShipment] = []
        outgoing: Outgoing = []
        for i, (msg, outcome) in enumerate(zip(msgs, outcomes, strict=True)):
            report, task = msg.payload, outcome.task
            if not outcome.applied:
                log.info("ignored %s report for pick task %s (%s)", report.kind, report.pick_task_id, outcome.found)
            elif i in leaving:
                shipment = shipped_parcel(task, leaving[i], next(serials))
                shipments.append(shipment)
                shipped = order_shipped(shipment, report.warehouse_id, outcome.order_complete)
                outgoing.append(self._order_event(shipped, task.order_id, msg))
            elif outcome.missing:
                short = ev.ShortPickReported(
                    order_id=task.order_id,
                    shipment_id=task.pick_task_id,
                    warehouse_id=report.warehouse_id,
                    missing=list(outcome.missing),
                )
                outgoing.append(self._order_event(short, task.order_id, msg))
        await repository.record_warehouse_reports(
            conn, [(m.event_id, m.payload, o.record) for m, o in zip(msgs, outcomes, strict=True)]
        )
        await repository.move_tasks(conn, list({o.task.pick_task_id: o.task for o in outcomes if o.applied}.values()))
        await repository.insert_shipments(conn, shipments)
        await enqueue(conn, outgoing)

    def _carrier_service(self, task: asyncpg.Record, report: ev.WarehouseReported) -> Leaving:
        """The carrier service a packed parcel leaves with: the one keeping the promise made at release, cheapest."""
        if report.package is None:
            raise ValueError("a packed report must carry the package weight: the carrier service depends on it")
        shipped_at = self.clock()
        cutoff = self._warehouse(task["warehouse_id"]).cutoff
        leaves = promises.ship_date(shipped_at, cutoff, self.rules.calendar)
        promise = task["promised_delivery"] or promises.promised_delivery(
            task["service_level"], task["created_at"], cutoff, self.rules
        )
        country = task["ship_to"]["country"]
        weight = report.package.weight_grams
        choice = domain.choose_service(self.rules, country, weight, leaves, promise)
        if choice is None:
            raise LookupError(f"no carrier service in the rate table takes {weight} g to {country}")
        if not choice.keeps_promise:
            log.warning(
                "pick task %s: no service keeps the promise %s; delivers %s",
                task["pick_task_id"],
                promise,
                choice.delivery,
            )
        return Leaving(choice, leaves, shipped_at, weight)

    async def on_carrier_reported(self, conn: Conn, msgs: list[Inbound[ev.CarrierReported]]) -> None:
        """Follow the batch's carrier updates in the order read, in a fixed number of statements: their shipments
        locked at once, every update recorded (one the carrier sent before is nothing more), each applied to its
        parcel as the updates before it left it, and an order delivered by the last delivery that completes it."""
        reports = [m.payload for m in msgs]
        rows = await repository.lock_shipments(conn, (r.tracking_number for r in reports))
        for report in reports:
            found = rows.get(report.tracking_number)
            if found is None or found["carrier"] != report.carrier:
                raise self._unknown_parcel(report)
        recorded = await repository.record_carrier_events(conn, reports)
        first_told = []
        for report in reports:  # the same update twice in the batch: the first is recorded, the second a repeat
            key = (report.tracking_number, report.kind, report.occurred_at)
            first_told.append(key in recorded)
            recorded.discard(key)
        parcels = {number: repository.parcel(row) for number, row in rows.items()}
        news, moved = domain.follow_updates(parcels, reports, first_told)
        await repository.track_shipments(conn, moved)
        delivering = [
            parcels[r.tracking_number].order_id if new and r.kind == "delivered" else None
            for r, new in zip(reports, news, strict=True)
        ]
        delivered_orders = {order_id for order_id in delivering if order_id is not None}
        delivered = (
            await repository.shipments_delivered(conn, delivered_orders, dropship.ENDED_EMPTY)
            if delivered_orders
            else {}
        )
        completing = domain.completing_deliveries(delivering, delivered)
        outgoing: Outgoing = []
        for i, (msg, new) in enumerate(zip(msgs, news, strict=True)):
            report, shipment = msg.payload, rows[msg.payload.tracking_number]
            order_id = shipment["order_id"]
            if new and report.kind == "exception":
                exception = ev.DeliveryException(
                    order_id=order_id,
                    pick_task_id=shipment["pick_task_id"],
                    carrier=report.carrier,
                    tracking_number=report.tracking_number,
                    detail=report.detail or "the carrier reported a delivery exception",
                    occurred_at=report.occurred_at,
                )
                outgoing.append(self._order_event(exception, order_id, msg))
            elif i in completing:
                delivered_event = ev.OrderDelivered(order_id=order_id, delivered_at=report.occurred_at)
                outgoing.append(self._order_event(delivered_event, order_id, msg))
        await enqueue(conn, outgoing)

    def _unknown_parcel(self, report: ev.CarrierReported) -> LookupError:
        """Why a carrier update names no shipment of ours: an unknown carrier, a malformed number, or neither."""
        carrier = self.rules.carrier(report.carrier)
        if carrier is None:
            return LookupError(f"unknown carrier {report.carrier}")
        if not tracking.is_valid(carrier.tracking, report.tracking_number):
            return LookupError(f"{report.tracking_number} is not a valid {report.carrier} tracking number")
        return LookupError(f"no {report.carrier} shipment with tracking number {report.tracking_number}")

    async def on_cancellation_requested(self, conn: Conn, msg: Inbound[ev.OrderCancellationRequested]) -> None:
        request = msg.payload
        await repository.lock_orders(conn, [request.order_id])  # no pick task of the order is released meanwhile
        tasks = [repository.task_state(row) for row in await repository.lock_order_tasks(conn, request.order_id)]
        tasks += await self.dropship.lock_as_tasks(conn, request.order_id)  # a purchase order is withdrawn alike
        await self._decide_cancellation(conn, msg, request.order_id, tasks, request.lines, request.reason)

    async def on_withdrawal_requested(self, conn: Conn, msg: Inbound[ev.WithdrawalRequested]) -> None:
        """Lines of a shipment a partial cancellation crossed (it was accepted before the shipment got here):
        decided like a cancellation of those lines, of that shipment alone."""
        request = msg.payload
        await repository.lock_orders(conn, [request.order_id])
        rows = await repository.lock_order_tasks(conn, request.order_id)
        tasks = [repository.task_state(row) for row in rows if row["pick_task_id"] == request.shipment_id]
        if not tasks:  # its allocation precedes this request on the same partition: not expected
            refused = ev.CancellationRefused(
                order_id=request.order_id, reason=f"shipment {request.shipment_id} is not known to fulfillment"
            )
            log.error("%s (order %s)", refused.reason, request.order_id)
            await enqueue(conn, [self._order_event(refused, request.order_id, msg)])
            return
        await self._decide_cancellation(conn, msg, request.order_id, tasks, request.lines, request.reason)

    async def _decide_cancellation(
        self,
        conn: Conn,
        msg: Inbound[Any],
        order_id: UUID,
        tasks: list[domain.TaskState],
        lines: list[ev.ItemQuantity] | None,
        reason: str,
    ) -> None:
        decision = domain.decide_cancellation(tasks, lines)
        decided_at = self.clock()
        if isinstance(decision, domain.Refuse):
            await repository.record_cancellation(
                conn, msg.event_id, order_id, lines, reason, [], decision.reason, decided_at
            )
            refused = ev.CancellationRefused(order_id=order_id, reason=decision.reason)
            await enqueue(conn, [self._order_event(refused, order_id, msg)])
            return
        withdrawn = [t.pick_task_id for t in decision.tasks]
        await repository.withdraw(conn, withdrawn, reason)
        await repository.record_cancellation(conn, msg.event_id, order_id, lines, reason, withdrawn, None, decided_at)
        outgoing = await self.dropship.withdraw(conn, decision.tasks, reason, msg.envelope)
        outgoing += [
            (
                topics.PICK_TASKS,
                t.warehouse_id,
                self._event(
                    ev.PickTaskCancelled(
                        pick_task_id=t.pick_task_id,
                        order_id=order_id,
                        warehouse_id=t.warehouse_id,
                        reason=reason,
                        cancelled_at=decided_at,
                    ),
                    order_id,
                    msg,
                ),
            )
            for t in decision.tasks
            if t.warehouse_id in self.warehouses
        ]
        accepted = ev.CancellationAccepted(order_id=order_id, lines=lines, withdrawn_shipments=withdrawn, reason=reason)
        outgoing.append(self._order_event(accepted, order_id, msg))
        await enqueue(conn, outgoing)

    async def on_change_requested(self, conn: Conn, msg: Inbound[ev.OrderChangeRequested]) -> None:
        """An order change withdraws the pick tasks it touches, all or none: refused when the warehouse has started
        on one of them. The order's lock (taken in `prepare`) orders it with the warehouse's `picked` report: the
        report that comes second finds the task withdrawn (and is only recorded), or the change finds it picked."""
        request = msg.payload
        known = (await change_repository.latest(conn, [request.order_id])).get(request.order_id)
        if known is not None and known["order_version"] >= request.order_version:
            log.warning(
                "change %s of order %s: version %d decided before",
                request.change_id,
                request.order_id,
                request.order_version,
            )
            return
        tasks = [repository.task_state(row) for row in await repository.lock_order_tasks(conn, request.order_id)]
        reduced = {line.sku: line.quantity for line in request.reduced}
        purchase_orders = await dropship_repository.statuses_of_order(conn, request.order_id)
        decision = changes.decide_change(tasks, request.reroute, reduced, purchase_orders)
        decided_at = self.clock()
        if isinstance(decision, domain.Refuse):
            await change_repository.record(conn, msg.event_id, request, decision.reason, [], decided_at)
            refused = ev.OrderChangeRefused(
                order_id=request.order_id,
                change_id=request.change_id,
                order_version=request.order_version,
                reason=decision.reason,
            )
            await enqueue(conn, [self._order_event(refused, request.order_id, msg)])
            return
        withdrawn = [t.pick_task_id for t in decision.tasks]
        reason = f"order changed ({request.change_id}): {request.reason}"
        await repository.withdraw(conn, withdrawn, reason)
        await change_repository.record(conn, msg.event_id, request, None, withdrawn, decided_at)
        outgoing: Outgoing = [
            (
                topics.PICK_TASKS,
                t.warehouse_id,
                self._event(
                    ev.PickTaskCancelled(
                        pick_task_id=t.pick_task_id,
                        order_id=request.order_id,
                        warehouse_id=t.warehouse_id,
                        reason=reason,
                        cancelled_at=decided_at,
                        order_version=request.order_version,
                    ),
                    request.order_id,
                    msg,
                ),
            )
            for t in decision.tasks
        ]
        accepted = ev.OrderChangeAccepted(
            order_id=request.order_id,
            change_id=request.change_id,
            order_version=request.order_version,
            ship_to=request.ship_to,
            service_level=request.service_level,
            lines=request.lines,
            withdrawn_shipments=withdrawn,
            reason=request.reason,
        )
        outgoing.append(self._order_event(accepted, request.order_id, msg))
        await enqueue(conn, outgoing)

    def routes(self) -> Routes:
        # Backorders, cancellations and stock counts wait in allocation: only new shipments are picked.
        return {
            ev.OrderChangeRequested: one_at_a_time(self.on_change_requested),
            ev.OrderAllocated: self.on_order_allocated,
            ev.WarehouseReported: self.on_warehouse_reported,
            ev.CarrierReported: self.on_carrier_reported,
            ev.OrderCancellationRequested: one_at_a_time(self.on_cancellation_requested),
            ev.WithdrawalRequested: one_at_a_time(self.on_withdrawal_requested),
            ev.SupplierReported: one_at_a_time(self.dropship.on_supplier_reported),
        }


class Leaving(NamedTuple):
    """How a packed parcel leaves: by which carrier service, on which day, when, and how heavy."""

    choice: domain.ServiceChoice
    leaves: date
    shipped_at: datetime
    weight_grams: int


def shipped_parcel(task: domain.Picking, leaving: Leaving, serial: int) -> repository.NewShipment:
    """The task's parcel, under the tracking number the serial gives in its carrier's format."""
    number = tracking.issue(leaving.choice.carrier.tracking, serial)
    return repository.NewShipment(
        number,
        task.pick_task_id,
        task.order_id,
        leaving.weight_grams,
        task.held,
        leaving.choice,
        leaving.leaves,
        leaving.shipped_at,
    )


def order_shipped(shipment: repository.NewShipment, warehouse_id: str, order_complete: bool) -> ev.OrderShipped:
    choice = shipment.choice
    return ev.OrderShipped(
        order_id=shipment.order_id,
        pick_task_id=shipment.pick_task_id,
        warehouse_id=warehouse_id,
        carrier=choice.carrier.code,
        tracking_number=shipment.tracking_number,
        shipped_at=shipment.shipped_at,
        lines=list(shipment.lines),
        service=choice.service,
        promised_delivery=choice.promised_delivery,
        tracking_url=choice.carrier.tracking_link(shipment.tracking_number),
        order_complete=order_complete,
    )


def superseded(changed: Mapping[UUID, asyncpg.Record], allocated: ev.OrderAllocated) -> str | None:
    """Why a shipment reserved under an older version of the order than its latest accepted change is withdrawn."""
    latest = changed.get(allocated.order_id)
    if latest is None or allocated.order_version >= latest["order_version"]:
        return None
    return f"superseded by change {latest['change_id']} (version {latest['order_version']})"


def accepted_again(latest: asyncpg.Record, withdrawn: list[UUID]) -> ev.OrderChangeAccepted:
    """The latest change, told again with the older version's shipments withdrawn since."""
    return ev.OrderChangeAccepted(
        order_id=latest["order_id"],
        change_id=latest["change_id"],
        order_version=latest["order_version"],
        ship_to=ev.Address.model_validate(latest["ship_to"]),
        service_level=latest["service_level"],
        lines=[ev.ItemQuantity(**line) for line in latest["lines"]],
        withdrawn_shipments=withdrawn,
        reason=latest["reason"],
    )
