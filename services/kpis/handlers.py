"""The KPI service's handlers: each event type the KPIs need becomes a row (or a column) of the order's facts, a
whole batch in one statement per table. Times are the events' own, and a fact that must be the first or the latest
is kept by comparing them, so a redelivered or late event cannot change a figure twice."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.backbone.consumer import Routes
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.contracts import events as ev

from . import domain, repository


def units(lines: Any) -> dict[str, int]:
    counted: Counter[str] = Counter()
    for line in lines:
        counted[line.sku] += line.quantity
    return dict(counted)


# The events of an order change's course, and the step of it each says was taken.
CHANGE_STEPS: dict[type[ev.Contract], repository.ChangeStep] = {
    ev.OrderChangeRequested: "requested",
    ev.OrderChangeApplied: "applied",
    ev.OrderChangeRefused: "refused",
}


def first_decision(msg: Inbound[Any]) -> tuple[UUID, str, dict[str, int], datetime]:
    payload, at = msg.payload, msg.envelope.occurred_at
    if isinstance(payload, ev.OrderAllocated):
        # A supplier's lines count as filled as much as a warehouse's.
        lines = [line for s in payload.shipments for line in s.lines] + [
            line for d in payload.dropship for line in d.lines
        ]
        return payload.order_id, domain.ALLOCATED, units(lines), at
    if isinstance(payload, ev.OrderBackordered):
        return payload.order_id, domain.BACKORDERED, {}, at
    return payload.order_id, domain.UNFULFILLABLE, {}, at


class KpiHandlers:
    def __init__(self, rules: domain.Rules) -> None:
        self.rules = rules

    async def on_order_validated(self, conn: Conn, msgs: list[Inbound[ev.OrderValidated]]) -> None:
        await repository.save_orders(
            conn,
            [
                (o.order_id, o.channel, o.received_at, o.ship_to.country, units(o.lines))
                for o in (m.payload for m in msgs)
            ],
        )

    async def on_order_rejected(self, conn: Conn, msgs: list[Inbound[ev.OrderRejected]]) -> None:
        await repository.save_rejections(
            conn, [(m.payload.order_id, m.payload.channel, m.envelope.occurred_at) for m in msgs]
        )

    async def on_order_held(self, conn: Conn, msgs: list[Inbound[ev.OrderHeld]]) -> None:
        earliest: dict[UUID, tuple[UUID, str, datetime]] = {}
        for m in sorted(msgs, key=lambda m: m.envelope.occurred_at, reverse=True):
            earliest[m.payload.order_id] = (m.payload.order_id, m.payload.channel, m.envelope.occurred_at)
        await repository.save_holds_placed(conn, list(earliest.values()))

    async def on_hold_ended(self, conn: Conn, msgs: list[Inbound[ev.HoldReleased | ev.HeldOrderCancelled]]) -> None:
        latest: dict[UUID, tuple[UUID, str | None, datetime, bool]] = {}
        for m in sorted(msgs, key=lambda m: m.envelope.occurred_at):
            p = m.payload
            if isinstance(p, ev.HoldReleased) and p.remaining:
                continue  # other holds still keep it
            cancelled = isinstance(p, ev.HeldOrderCancelled)
            _, channel, _, was_cancelled = latest.get(p.order_id, (p.order_id, None, m.envelope.occurred_at, False))
            if isinstance(p, ev.HeldOrderCancelled):
                channel = p.channel
            latest[p.order_id] = (p.order_id, channel, m.envelope.occurred_at, cancelled or was_cancelled)
        await repository.save_holds_ended(conn, list(latest.values()))

    async def on_allocation_decided(self, conn: Conn, msgs: list[Inbound[Any]]) -> None:
        earliest: dict[UUID, tuple[UUID, str, dict[str, int], datetime]] = {}
        for m in sorted(msgs, key=lambda m: m.envelope.occurred_at, reverse=True):
            decision = first_decision(m)
            earliest[decision[0]] = decision
        await repository.save_first_allocations(conn, list(earliest.values()))

    async def on_order_cancelled(self, conn: Conn, msgs: list[Inbound[ev.OrderCancelled]]) -> None:
        whole = [(m.payload.order_id, m.envelope.occurred_at) for m in msgs if m.payload.lines is None]
        await repository.save_cancellations(conn, list({o: (o, at) for o, at in reversed(whole)}.values()))
        partly = [(m.envelope.event_id, m.payload.order_id, units(m.payload.lines)) for m in msgs if m.payload.lines]
        await repository.save_cancelled_lines(conn, partly)

    async def on_order_shipped(self, conn: Conn, msgs: list[Inbound[ev.OrderShipped]]) -> None:
        shipped = {
            p.pick_task_id: (
                p.pick_task_id,
                p.order_id,
                p.warehouse_id,
                p.carrier,
                p.service,
                p.shipped_at,
                p.promised_delivery,
                units(p.lines),
            )
            for p in (m.payload for m in msgs)
        }
        await repository.save_shipments(conn, list(shipped.values()))

    async def on_order_delivered(self, conn: Conn, msgs: list[Inbound[ev.OrderDelivered]]) -> None:
        latest: dict[UUID, datetime] = {}
        for p in (m.payload for m in msgs):
            latest[p.order_id] = max(p.delivered_at, latest.get(p.order_id, p.delivered_at))
        await repository.save_deliveries(conn, list(latest.items()))

    async def on_delivery_exception(self, conn: Conn, msgs: list[Inbound[ev.DeliveryException]]) -> None:
        found = {
            (p.pick_task_id, p.occurred_at): (
                p.pick_task_id,
                p.occurred_at,
                p.order_id,
                self.rules.is_document_exception(p.detail),
            )
            for p in (m.payload for m in msgs)
        }
        await repository.save_exceptions(conn, list(found.values()))

    async def on_return_authorised(self, conn: Conn, msgs: list[Inbound[ev.ReturnAuthorised]]) -> None:
        await repository.save_returns(
            conn,
            [
                (
                    m.payload.return_id,
                    m.payload.order_id,
                    any(self.rules.is_damage(line.reason) for line in m.payload.lines),
                    m.envelope.occurred_at,
                )
                for m in {m.payload.return_id: m for m in msgs}.values()
            ],
        )

    async def on_change_step(self, conn: Conn, msgs: list[Inbound[Any]]) -> None:
        """A change passed on by capture, applied (with what it made due back) or refused by fulfillment."""
        steps: dict[repository.ChangeStep, dict[tuple[UUID, str], tuple[UUID, str, datetime]]] = {}
        due_back: dict[tuple[UUID, str], tuple[UUID, str, str, Decimal]] = {}
        changed_to: dict[tuple[UUID, str], tuple[UUID, str, int, dict[str, int]]] = {}
        for m in sorted(msgs, key=lambda m: m.envelope.occurred_at, reverse=True):  # the earliest kept
            p, key = m.payload, (m.payload.order_id, m.payload.change_id)
            step: repository.ChangeStep = CHANGE_STEPS[type(p)]
            steps.setdefault(step, {})[key] = (*key, m.envelope.occurred_at)
            if isinstance(p, ev.OrderChangeApplied):
                due_back[key] = (*key, p.currency, p.due_back)
                changed_to[key] = (*key, p.order_version, units(p.lines))
        for step, rows in sorted(steps.items()):
            await repository.save_change_steps(conn, step, list(rows.values()))
        await repository.save_change_money(conn, "due_back", list(due_back.values()))
        await repository.save_changed_lines(conn, list(changed_to.values()))

    async def on_change_refunded(self, conn: Conn, msgs: list[Inbound[ev.ChangeRefunded]]) -> None:
        refunded = {
            (p.order_id, p.change_id): (p.order_id, p.change_id, p.currency, p.amount)
            for p in (m.payload for m in msgs)
        }
        await repository.save_change_money(conn, "refunded", list(refunded.values()))

    async def on_product_upserted(self, conn: Conn, msgs: list[Inbound[ev.ProductUpserted]]) -> None:
        latest = {m.payload.sku: m.payload.weight_grams for m in msgs}
        weighed = await repository.save_products(conn, sorted(latest.items()))
        if weighed:
            await repository.note_weights_changed(conn, weighed)

    async def prepare(self, conn: Conn, msgs: list[Inbound[Any]]) -> None:
        """The orders whose facts the batch changes, noted in its transaction for the gauges (services/kpis/window.py):
        one insert a batch. A product is noted by its SKU, once its weight is new or changed (on_product_upserted)."""
        orders = {order for m in msgs if (order := getattr(m.payload, "order_id", None)) is not None}
        if orders:
            await repository.note_changes(conn, orders)

    def routes(self) -> Routes:
        return {
            ev.OrderValidated: self.on_order_validated,
            ev.OrderRejected: self.on_order_rejected,
            ev.OrderHeld: self.on_order_held,
            ev.HoldReleased: self.on_hold_ended,
            ev.HeldOrderCancelled: self.on_hold_ended,
            ev.OrderAllocated: self.on_allocation_decided,
            ev.OrderBackordered: self.on_allocation_decided,
            ev.OrderUnfulfillable: self.on_allocation_decided,
            ev.OrderCancelled: self.on_order_cancelled,
            ev.OrderShipped: self.on_order_shipped,
            ev.OrderDelivered: self.on_order_delivered,
            ev.DeliveryException: self.on_delivery_exception,
            ev.ReturnAuthorised: self.on_return_authorised,
            ev.ProductUpserted: self.on_product_upserted,
            **dict.fromkeys(CHANGE_STEPS, self.on_change_step),
            ev.ChangeRefunded: self.on_change_refunded,
        }
