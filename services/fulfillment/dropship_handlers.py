"""Fulfillment's dropship handlers: issue a purchase order for each supplier's lines allocation routed, follow the
supplier's answers (acknowledged, rejected, partially accepted, shipped), hand declined lines back to allocation,
time out purchase orders left unanswered, withdraw them for a cancellation as pick tasks are, and turn a supplier's
shipment notice into the order's shipment, with its tracking number, like a warehouse's parcel (the carrier's updates
then deliver it the same way).

Every decision about a purchase order holds its order's lock row (taken for the batch in FulfillmentHandlers.prepare,
or by the timeout sweep), so whether the order is complete or delivered is decided over all its shipments at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import Envelope, EnvelopeHead, wrap
from shared.contracts.topics import Topic
from shared.reference.rates import ShippingRules
from shared.reference.suppliers import Suppliers

from . import domain, dropship, metrics, repository
from . import dropship_repository as purchase_orders
from .settings import Clock

log = logging.getLogger(__name__)
Outgoing = list[tuple[Topic, str, Envelope]]
TIMEOUT_BATCH = 100


class DropshipHandlers:
    def __init__(self, rules: ShippingRules, suppliers: Suppliers, clock: Clock) -> None:
        self.rules = rules
        self.suppliers = suppliers
        self.clock = clock

    def _event(self, payload: ev.Contract, order_id: UUID, cause: EnvelopeHead | None) -> Envelope:
        metrics.count_emitted(payload)
        return wrap(payload, order_id=order_id, cause=cause, occurred_at=self.clock())

    async def on_order_allocated(
        self, conn: Conn, msgs: list[Inbound[ev.OrderAllocated]], cancelled: dict[UUID, str]
    ) -> None:
        """Issue one purchase order per supplier part of the batch's allocations (each once, however often read); an
        order whose whole cancellation was accepted first gets none (its purchase orders are born cancelled)."""
        new: dict[UUID, tuple[purchase_orders.NewPurchaseOrder, Inbound[ev.OrderAllocated]]] = {}
        for msg in msgs:
            allocated = msg.payload
            for part in allocated.dropship:
                if part.purchase_order_id not in new:
                    status = "cancelled" if allocated.order_id in cancelled else dropship.ISSUED
                    new[part.purchase_order_id] = (
                        purchase_orders.NewPurchaseOrder(self._issue(allocated, part), status),
                        msg,
                    )
        if not new:
            return
        inserted = await purchase_orders.insert(conn, [n for n, _ in new.values()])
        outgoing: Outgoing = [
            (topics.PURCHASE_ORDERS, n.issued.supplier_id, self._event(n.issued, n.issued.order_id, msg.envelope))
            for po_id, (n, msg) in new.items()
            if po_id in inserted and n.status == dropship.ISSUED
        ]
        await enqueue(conn, outgoing)

    def _issue(self, allocated: ev.OrderAllocated, part: ev.PurchaseOrderPart) -> ev.PurchaseOrderIssued:
        supplier = self.suppliers.by_id.get(part.supplier_id)
        if supplier is None:
            raise LookupError(f"dropship supplier {part.supplier_id} is not configured")
        issued_at = self.clock()
        return ev.PurchaseOrderIssued(
            purchase_order_id=part.purchase_order_id,
            order_id=allocated.order_id,
            supplier_id=part.supplier_id,
            lines=part.lines,
            ship_to=allocated.ship_to,
            service_level=allocated.service_level,
            ship_by=dropship.ship_by(issued_at, supplier, self.rules.calendar),
            answer_by=issued_at + supplier.answer_timeout,
            packing_slip=ev.PackingSlip(
                order_id=allocated.order_id,
                recipient=allocated.ship_to.name,
                lines=part.lines,
                note="Shipped on behalf of the shop you ordered from.",
            ),
            issued_at=issued_at,
        )

    async def on_supplier_reported(self, conn: Conn, msg: Inbound[ev.SupplierReported]) -> None:
        report = msg.payload
        po = await purchase_orders.lock(conn, report.purchase_order_id)
        if po is None or po["supplier_id"] != report.supplier_id:
            raise LookupError(f"no purchase order {report.purchase_order_id} with supplier {report.supplier_id}")
        accepted = None if report.lines is None else {line.sku: line.quantity for line in report.lines}
        held = purchase_orders.quantities(po["held"])
        decided = dropship.answer(po["status"], report.kind, held, accepted)
        if decided is None:
            # Late or repeated (after a timeout, say): kept for the record, never an error and never an effect.
            await purchase_orders.record_report(conn, msg.event_id, report, f"ignored: purchase order {po['status']}")
            log.info("ignored %s for purchase order %s (%s)", report.kind, report.purchase_order_id, po["status"])
            return
        if decided.status == "shipped" and await purchase_orders.tracking_number_taken(
            conn, str(report.tracking_number)
        ):
            raise ValueError(f"tracking number {report.tracking_number} already belongs to another shipment")
        await purchase_orders.record_report(conn, msg.event_id, report, f"applied: {decided.status}")
        await purchase_orders.set_status(conn, po["purchase_order_id"], decided.status, decided.held, self.clock())
        outgoing: Outgoing = []
        if decided.declined:
            reason = report.reason or f"the supplier {report.kind.replace('_', ' ')} the purchase order"
            outgoing.append(self._declined(po, decided.declined, report.kind, reason, msg.envelope))
        if decided.status == "shipped":
            outgoing.append(await self._ship(conn, po, report, decided.held, msg.envelope))
        await enqueue(conn, outgoing)

    async def _ship(
        self, conn: Conn, po: asyncpg.Record, report: ev.SupplierReported, held: dict[str, int], cause: EnvelopeHead
    ) -> tuple[Topic, str, Envelope]:
        """The supplier's parcel becomes one of the order's shipments; the order is complete when every pick task
        and purchase order still meant to ship has shipped."""
        assert report.carrier is not None and report.tracking_number is not None, "a shipment notice carries both"
        order_id, shipped_at = po["order_id"], self.clock()
        await purchase_orders.insert_shipment(conn, report.tracking_number, po, report.carrier, held, shipped_at)
        tasks = [t["status"] for t in await repository.lock_order_tasks(conn, order_id)]
        others = await purchase_orders.statuses_of_order(conn, order_id, besides=po["purchase_order_id"])
        shipped = ev.OrderShipped(
            order_id=order_id,
            pick_task_id=po["purchase_order_id"],
            warehouse_id=po["supplier_id"],
            carrier=report.carrier,
            tracking_number=report.tracking_number,
            shipped_at=shipped_at,
            lines=[ev.ItemQuantity(sku=sku, quantity=n) for sku, n in sorted(held.items())],
            order_complete=domain.order_complete([*tasks, *map(dropship.as_task_status, others), domain.SHIPPED]),
        )
        return topics.FULFILLMENT_EVENTS, str(order_id), self._event(shipped, order_id, cause)

    def _declined(
        self, po: asyncpg.Record, lines: dict[str, int], cause: str, reason: str, envelope: EnvelopeHead | None
    ) -> tuple[Topic, str, Envelope]:
        declined = ev.DropshipDeclined(
            order_id=po["order_id"],
            purchase_order_id=po["purchase_order_id"],
            supplier_id=po["supplier_id"],
            lines=[ev.ItemQuantity(sku=sku, quantity=n) for sku, n in sorted(lines.items())],
            cause=cause,  # rejected | partially_accepted | timed_out
            reason=reason,
        )
        return topics.FULFILLMENT_EVENTS, str(po["order_id"]), self._event(declined, po["order_id"], envelope)

    async def lock_as_tasks(self, conn: Conn, order_id: UUID) -> list[domain.TaskState]:
        """The order's purchase orders as the pick tasks they stand in for, locked, for a cancellation to decide
        on: an open one is withdrawn like a task not yet packed, a shipped one refuses it like a packed one."""
        return [
            domain.TaskState(
                po["purchase_order_id"],
                po["supplier_id"],
                dropship.as_task_status(po["status"]),
                tuple(
                    ev.ItemQuantity(sku=sku, quantity=n) for sku, n in purchase_orders.quantities(po["held"]).items()
                ),
            )
            for po in await purchase_orders.lock_of_order(conn, order_id)
        ]

    async def withdraw(
        self, conn: Conn, tasks: Sequence[domain.TaskState], reason: str, cause: EnvelopeHead
    ) -> Outgoing:
        """Cancel, with their suppliers, the purchase orders among the tasks a cancellation withdraws."""
        ours = [t for t in tasks if t.warehouse_id in self.suppliers.by_id]
        outgoing: Outgoing = []
        for t in ours:
            order_id = await purchase_orders.cancel(conn, t.pick_task_id, self.clock())
            cancelled = ev.PurchaseOrderCancelled(
                purchase_order_id=t.pick_task_id,
                order_id=order_id,
                supplier_id=t.warehouse_id,
                reason=reason,
                cancelled_at=self.clock(),
            )
            outgoing.append((topics.PURCHASE_ORDERS, t.warehouse_id, self._event(cancelled, order_id, cause)))
        return outgoing

    async def time_out(self, conn: Conn) -> int:
        """Purchase orders unanswered by their deadline: cancelled with the supplier, their lines handed back to
        allocation; in the caller's transaction. Returns how many."""
        now = self.clock()
        outgoing: Outgoing = []
        due = await purchase_orders.lock_unanswered(conn, now, TIMEOUT_BATCH)
        for po in due:
            if not dropship.timed_out(po["status"], po["answer_by"], now):
                continue
            held = purchase_orders.quantities(po["held"])
            await purchase_orders.set_status(conn, po["purchase_order_id"], "timed_out", {}, now)
            reason = f"no answer from {po['supplier_id']} by {po['answer_by'].isoformat()}"
            cancelled = ev.PurchaseOrderCancelled(
                purchase_order_id=po["purchase_order_id"],
                order_id=po["order_id"],
                supplier_id=po["supplier_id"],
                reason=reason,
                cancelled_at=now,
            )
            outgoing.append((topics.PURCHASE_ORDERS, po["supplier_id"], self._event(cancelled, po["order_id"], None)))
            outgoing.append(self._declined(po, held, "timed_out", reason, None))
        await enqueue(conn, outgoing)
        return len(due)


async def sweep_timeouts(pool: asyncpg.Pool, handlers: DropshipHandlers, every_seconds: float) -> None:
    """Look for unanswered purchase orders past their deadline every few seconds (several instances may: the order
    locks make each purchase order time out once)."""
    while True:
        try:
            async with pool.acquire() as conn, conn.transaction():
                done = await handlers.time_out(conn)
        except Exception as exc:  # database unavailable: the next sweep tries again
            log.warning("dropship timeout sweep failed (%s)", exc.__class__.__name__)
            done = 0
        if done < TIMEOUT_BATCH:
            await asyncio.sleep(every_seconds)
