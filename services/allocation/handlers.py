"""Allocation's handlers: route validated orders, apply receipts and counts (releasing backorders in
arrival order), release stock on cancellation, re-route short picks, and take shipped units out of stock.

Each handler loads the locked part of the inventory it needs, applies one operation of the aggregate
(services.allocation.inventory), saves what changed and writes the outcomes to the outbox, all in the
transaction the consumer opened for the batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any, cast
from uuid import UUID

from shared.backbone.consumer import Routes, one_at_a_time
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.backorders import quantities
from shared.contracts.envelope import Envelope, wrap
from shared.reference import catalogue

from . import metrics, repository
from .domain import Network
from .inventory import (
    Allocated,
    Backordered,
    Cancelled,
    CancelRequest,
    CountShort,
    Inventory,
    Order,
    Outcome,
    Unfulfillable,
    WithdrawalWanted,
)

log = logging.getLogger(__name__)


class AllocationHandlers:
    def __init__(self, network: Network) -> None:
        self.network = network

    async def prepare(self, conn: Conn, batch: list[Inbound[Any]]) -> None:
        """Lock, in one global order, the stock rows of every SKU this batch may touch."""
        skus: set[str] = set()
        orders: set[UUID] = set()
        shipments: set[UUID] = set()
        for item in batch:
            match item.payload:
                case ev.OrderValidated(lines=lines):
                    skus |= {line.sku for line in lines}
                case ev.InventoryAdjusted(sku=sku):
                    skus.add(sku)
                case ev.ReturnReceived(lines=lines):
                    skus |= {line.sku for line in lines if line.disposition == "restock"}
                case ev.CancellationAccepted(order_id=order_id) | ev.ShortPickReported(order_id=order_id):
                    orders.add(order_id)
                case ev.OrderShipped(pick_task_id=shipment_id):
                    shipments.add(shipment_id)
        if skus or orders or shipments:
            await repository.lock_for_batch(conn, self.network.warehouse_ids, skus, orders, shipments)

    async def on_order_validated(self, conn: Conn, msg: Inbound[ev.OrderValidated]) -> None:
        validated = msg.payload
        if await repository.order_known(conn, validated.order_id):
            return
        order = _order(validated)
        inventory = await self._inventory(conn, order.skus)
        await repository.load_queue(conn, inventory, order.skus)
        early = await repository.take_early_cancellation(conn, order.order_id)
        await self._apply(conn, inventory, inventory.place(order, early), msg.envelope)

    async def on_inventory_adjusted(self, conn: Conn, msg: Inbound[ev.InventoryAdjusted]) -> None:
        adjustment = msg.payload
        where, sku = adjustment.warehouse_id, adjustment.sku
        if where not in self.network.warehouse_ids:
            raise ValueError(f"unknown warehouse {where}: stock there could never be promised")
        earlier = await repository.record_adjustment(conn, adjustment)
        if earlier == (adjustment.kind, adjustment.quantity):
            return  # a replay of a line applied before
        if earlier is not None:
            raise AdjustmentConflict(adjustment, *earlier)
        inventory = await self._inventory(conn, {sku})
        await repository.load_queue(conn, inventory, {sku}, freeing={sku})
        before = inventory.level(where, sku).on_hand
        if adjustment.kind == "receipt":
            outcomes = inventory.receive(where, sku, adjustment.quantity)
        else:
            outcomes = inventory.count(where, sku, adjustment.quantity)
        shortfall = sum(o.reserved - o.counted for o in outcomes if isinstance(o, CountShort))
        if shortfall:
            log.warning("count %s at %s is %d units short of reserved stock", adjustment.reference, where, shortfall)
        await repository.record_effect(conn, adjustment, inventory.level(where, sku).on_hand - before, shortfall)
        await self._apply(conn, inventory, outcomes, msg.envelope, reference=adjustment.reference)

    async def on_return_received(self, conn: Conn, msg: Inbound[ev.ReturnReceived]) -> None:
        """Returned units to restock are a receipt at the receiving warehouse (the other dispositions never become
        sellable): the receipt path adds them to on hand and releases backorders first come first served. The
        receipt reference names the return's receipt, so a replay is harmless."""
        received = msg.payload
        restocked: dict[str, int] = {}
        for line in received.lines:
            if line.disposition == "restock":
                restocked[line.sku] = restocked.get(line.sku, 0) + line.quantity
        for sku, quantity in sorted(restocked.items()):
            receipt = ev.InventoryAdjusted(
                warehouse_id=received.warehouse_id,
                sku=sku,
                kind="receipt",
                quantity=quantity,
                reference=f"return:{received.rma}:{received.receipt}",
            )
            await self.on_inventory_adjusted(conn, dataclasses.replace(msg, payload=receipt))  # type: ignore[arg-type]

    async def on_order_shipped(self, conn: Conn, msg: Inbound[ev.OrderShipped]) -> None:
        shipped = msg.payload
        inventory = Inventory(self.network)
        await repository.load_shipment(conn, inventory, shipped.pick_task_id)
        if not inventory.reservations:
            log.warning("shipment %s shipped with no open reservation", shipped.pick_task_id)
        inventory.ship(shipped.pick_task_id)
        await repository.save(conn, inventory)

    async def on_short_pick_reported(self, conn: Conn, msg: Inbound[ev.ShortPickReported]) -> None:
        short = msg.payload
        inventory = Inventory(self.network)
        await repository.load_orders(conn, inventory, [short.order_id])
        if short.order_id not in inventory.orders:
            raise LookupError(f"short pick for order {short.order_id} allocation does not know")
        await repository.load_queue(conn, inventory, inventory.orders[short.order_id].skus)
        missing = quantities(short.missing)
        outcomes = inventory.short_pick(short.order_id, short.shipment_id, short.warehouse_id, missing)
        await self._apply(conn, inventory, outcomes, msg.envelope)

    async def on_cancellation_accepted(self, conn: Conn, msg: Inbound[ev.CancellationAccepted]) -> None:
        accepted = msg.payload
        lines = None if accepted.lines is None else quantities(accepted.lines)
        inventory = Inventory(self.network)
        await repository.load_orders(conn, inventory, [accepted.order_id])
        if accepted.order_id not in inventory.orders:
            await repository.add_early_cancellation(conn, accepted.order_id, CancelRequest(lines, accepted.reason))
            return
        skus = inventory.orders[accepted.order_id].skus
        await repository.load_queue(conn, inventory, skus, freeing=skus)
        outcomes = inventory.cancel(accepted.order_id, lines, accepted.withdrawn_shipments, accepted.reason)
        await self._apply(conn, inventory, outcomes, msg.envelope)

    async def _inventory(self, conn: Conn, skus: Iterable[str]) -> Inventory:
        inventory = Inventory(self.network)
        inventory.add_stock(await repository.lock_stock(conn, self.network.warehouse_ids, skus))
        return inventory

    async def _apply(
        self, conn: Conn, inventory: Inventory, outcomes: list[Outcome], cause: Envelope, reference: str = ""
    ) -> None:
        await repository.save(conn, inventory)
        metrics.count_outcomes(outcomes)
        events = [_announcement(inventory, outcome, reference) for outcome in outcomes]
        await enqueue(
            conn,
            [
                (topics.ALLOCATION_EVENTS, key, wrap(payload, order_id=order_id, cause=cause))
                for key, order_id, payload in events
            ],
        )

    def routes(self) -> Routes:
        return {
            ev.OrderValidated: one_at_a_time(self.on_order_validated),
            ev.InventoryAdjusted: one_at_a_time(self.on_inventory_adjusted),
            ev.ProductUpserted: catalogue.on_product_upserted,
            ev.OrderShipped: one_at_a_time(self.on_order_shipped),
            ev.CancellationAccepted: one_at_a_time(self.on_cancellation_accepted),
            ev.ShortPickReported: one_at_a_time(self.on_short_pick_reported),
            ev.ReturnReceived: one_at_a_time(self.on_return_received),
        }


class AdjustmentConflict(ValueError):
    """A line under the reference of one applied before, for the same SKU, that says something else: which
    one is right is for the warehouse to say, so it goes to the dead-letter topic, its reason with it."""

    def __init__(self, adjustment: ev.InventoryAdjusted, kind: str, quantity: int) -> None:
        where = f"{adjustment.reference} for {adjustment.sku} at {adjustment.warehouse_id}"
        super().__init__(
            f"{where} was applied as a {kind} of {quantity}; this one is a {adjustment.kind} of {adjustment.quantity}"
        )


def _order(validated: ev.OrderValidated) -> Order:
    return Order(
        order_id=validated.order_id,
        arrived_at=validated.received_at,
        channel=validated.channel,
        policy=validated.backorder_policy,
        ship_to=validated.ship_to.model_dump(mode="json"),
        service_level=validated.service_level,
        lines=quantities(validated.lines),
    )


def _items(lines: dict[str, int]) -> list[ev.ItemQuantity]:
    return [ev.ItemQuantity(sku=sku, quantity=quantity) for sku, quantity in sorted(lines.items()) if quantity]


def _announcement(inventory: Inventory, outcome: Outcome, reference: str) -> tuple[str, UUID | None, ev.Contract]:
    """The contract event for an outcome, with its key and order id."""
    match outcome:
        case Allocated():
            order = inventory.orders[outcome.order_id]
            shipments = [
                ev.Shipment(shipment_id=s.shipment_id, warehouse_id=s.warehouse_id, lines=_items(s.lines))
                for s in outcome.shipments
            ]
            payload: ev.Contract = ev.OrderAllocated(
                order_id=outcome.order_id,
                shipments=shipments,
                ship_to=ev.Address.model_validate(order.ship_to),
                service_level=cast(ev.ServiceLevel, order.service_level),
                backordered=_items(outcome.backordered),
                reason=outcome.reason,
            )
        case Backordered():
            payload = ev.OrderBackordered(
                order_id=outcome.order_id, reason=outcome.reason, missing=_items(outcome.missing)
            )
        case Unfulfillable():
            payload = ev.OrderUnfulfillable(order_id=outcome.order_id, reason=outcome.reason)
        case Cancelled():
            lines = None if outcome.lines is None else _items(outcome.lines)
            payload = ev.OrderCancelled(order_id=outcome.order_id, lines=lines, reason=outcome.reason)
        case WithdrawalWanted():
            payload = ev.WithdrawalRequested(
                order_id=outcome.order_id,
                shipment_id=outcome.shipment_id,
                warehouse_id=outcome.warehouse_id,
                lines=_items(outcome.lines),
                reason=outcome.reason,
            )
        case CountShort():
            short = ev.StockCountShort(
                warehouse_id=outcome.warehouse_id,
                sku=outcome.sku,
                counted=outcome.counted,
                reserved=outcome.reserved,
                reference=reference,
            )
            return f"{outcome.warehouse_id}:{outcome.sku}", None, short
    return str(outcome.order_id), outcome.order_id, payload
