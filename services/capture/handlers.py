"""Capture's handlers: intake (HTTP and Kafka), the catalogue copy, and the order timeline fed by the
lifecycle events of the other services. Each runs inside the transaction its caller opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared import catalogue, logs, topics
from shared import events as ev
from shared.consumer import Handler
from shared.db import Conn
from shared.envelope import Envelope, now, wrap
from shared.kafka import Inbound
from shared.metrics import count
from shared.metrics_business import ORDERS_RECEIVED, ORDERS_STATUS, REJECTION_REASONS
from shared.outbox import enqueue

from . import domain, latency, repository
from .domain import IntakeRules

SERVICE = "capture"


@dataclass(frozen=True)
class Accepted:
    order_id: UUID
    status: str
    duplicate: bool


class CaptureHandlers:
    def __init__(self, rules: IntakeRules) -> None:
        self.rules = rules

    async def intake(self, conn: Conn, order: ev.SubmittedOrder, cause: Envelope | None) -> Accepted:
        """Store a new order already decided (validated or rejected) and announce the decision; a known
        (channel, external_id) returns the order as it stands."""
        known_skus = await repository.catalogue(conn, (line.sku for line in order.lines))
        reasons = domain.rejection_reasons(order, known_skus, self.rules)
        status = "rejected" if reasons else "validated"
        received_at = now()
        order_id = await repository.insert_order(conn, order, domain.order_total(order), status, reasons, received_at)
        if order_id is None:
            known_id, known_status = await repository.find_by_external_id(conn, order.channel, order.external_id)
            return Accepted(known_id, known_status, duplicate=True)
        logs.bind(order_id=order_id)
        event = wrap(decision(order_id, order, reasons, received_at), producer=SERVICE, order_id=order_id, cause=cause)
        await repository.add_steps(
            conn,
            order_id,
            [
                ("received", received_at, f"via {order.channel}"),
                (status, event.occurred_at, "; ".join(reasons) or None),
            ],
        )
        await enqueue(conn, [(topics.ORDERS_REJECTED if reasons else topics.ORDERS_VALIDATED, str(order_id), event)])
        count(ORDERS_RECEIVED.labels(order.channel))
        count(ORDERS_STATUS.labels(status))
        for reason in reasons:
            count(REJECTION_REASONS.labels(reason_kind(reason)))
        return Accepted(order_id, status, duplicate=False)

    async def on_order_submitted(self, conn: Conn, msg: Inbound) -> None:
        assert isinstance(msg.payload, ev.SubmittedOrder)
        await self.intake(conn, msg.payload, msg.envelope)

    async def on_lifecycle_event(self, conn: Conn, msg: Inbound) -> None:
        """Allocation and fulfillment report progress; the order record keeps the timeline."""
        step = timeline_step(msg.payload)
        if step is None:
            return
        order_id, reported, detail = step
        current = await repository.status_of(conn, order_id)
        if current is None:
            raise LookupError(f"{msg.envelope.type} for an order capture does not know")
        status = domain.advance(current, reported)
        await repository.record_step(conn, order_id, status, reported, msg.envelope.occurred_at, detail)
        await latency.observe_step(conn, order_id, msg)
        if status != current:
            count(ORDERS_STATUS.labels(status))

    def routes(self) -> dict[str, Handler]:
        return {
            topics.ORDERS_SUBMITTED.name: self.on_order_submitted,
            topics.CATALOG_PRODUCTS.name: catalogue.on_product_upserted,
            topics.ALLOCATION_EVENTS.name: self.on_lifecycle_event,
            topics.PICK_TASKS.name: self.on_lifecycle_event,
            topics.FULFILLMENT_EVENTS.name: self.on_lifecycle_event,
        }


def decision(order_id: UUID, order: ev.SubmittedOrder, reasons: list[str], received_at: datetime) -> ev.Contract:
    if reasons:
        return ev.OrderRejected(
            order_id=order_id,
            channel=order.channel,
            external_id=order.external_id,
            reasons=reasons,
            customer=order.customer,
        )
    return ev.OrderValidated(
        order_id=order_id,
        channel=order.channel,
        external_id=order.external_id,
        received_at=received_at,
        currency=order.currency,
        total=domain.order_total(order),
        customer=order.customer,
        ship_to=order.shipping_address,
        service_level=order.service_level,
        lines=domain.items_to_reserve(order),
    )


def timeline_step(payload: ev.Contract) -> tuple[UUID, str, str | None] | None:
    match payload:
        case ev.OrderAllocated(order_id=order_id, shipments=shipments):
            return order_id, "allocated", "from " + ", ".join(s.warehouse_id for s in shipments)
        case ev.OrderBackordered(order_id=order_id, reason=reason):
            return order_id, "backordered", reason
        case ev.PickTaskReleased(order_id=order_id, warehouse_id=warehouse_id):
            return order_id, "released", f"pick task sent to {warehouse_id}"
        case ev.OrderShipped(order_id=order_id, carrier=carrier, tracking_number=tracking):
            return order_id, "shipped", f"{carrier} {tracking}"
        case ev.OrderDelivered(order_id=order_id):
            return order_id, "delivered", None
    return None


def reason_kind(reason: str) -> str:
    """A bounded label for a rejection reason (the reason text itself names SKUs and amounts)."""
    for kind in (
        "quantity",
        "unknown SKU",
        "not sold",
        "too many lines",
        "no lines",
        "currency",
        "payment",
        "ship to",
    ):
        if kind in reason:
            return kind.replace(" ", "_").lower()
    return "other"
