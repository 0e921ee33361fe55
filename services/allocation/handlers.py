"""Allocation's handlers: reserve validated orders, apply receipts and counts, release backorders, and
take shipped units out of stock."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from shared import catalogue, topics
from shared import events as ev
from shared.consumer import Handler
from shared.db import Conn
from shared.envelope import Envelope, now, wrap
from shared.kafka import Inbound
from shared.outbox import enqueue
from shared.warehouses import Warehouse

from . import domain, repository

SERVICE = "allocation"
log = logging.getLogger(__name__)


class AllocationHandlers:
    def __init__(self, warehouses: Sequence[Warehouse]) -> None:
        self.warehouses = tuple(warehouses)

    async def on_order_validated(self, conn: Conn, msg: Inbound) -> None:
        order = msg.payload
        assert isinstance(order, ev.OrderValidated)
        if await repository.order_known(conn, order.order_id):
            return
        lines = {line.sku: line.quantity for line in order.lines}
        available = await repository.lock_stock(conn, lines)
        decision = domain.route(lines, available, self.warehouses, order.ship_to.country)
        if isinstance(decision, domain.Reserve):
            await repository.save_order(conn, order, "allocated", None, now())
            shipment_id = await repository.reserve(conn, order.order_id, decision.warehouse_id, decision.lines)
            await self._announce_allocated(
                conn, order.order_id, shipment_id, decision, order.ship_to, order.service_level, msg.envelope
            )
        else:
            await repository.save_order(conn, order, "backordered", decision.reason, now())
            backordered = ev.OrderBackordered(
                order_id=order.order_id,
                reason=decision.reason,
                missing=[ev.ItemQuantity(sku=s, quantity=q) for s, q in sorted(decision.missing.items())],
            )
            await enqueue(
                conn,
                [
                    (
                        topics.ALLOCATION_EVENTS,
                        str(order.order_id),
                        wrap(backordered, producer=SERVICE, order_id=order.order_id, cause=msg.envelope),
                    )
                ],
            )

    async def on_inventory_adjusted(self, conn: Conn, msg: Inbound) -> None:
        adjustment = msg.payload
        assert isinstance(adjustment, ev.InventoryAdjusted)
        if not await repository.record_adjustment(conn, adjustment):
            return
        if adjustment.kind == "receipt":
            await repository.receive(conn, adjustment.warehouse_id, adjustment.sku, adjustment.quantity)
        else:
            reserved = await repository.lock_stock_row(conn, adjustment.warehouse_id, adjustment.sku)
            on_hand, shortfall = domain.count_reconciliation(adjustment.quantity, reserved)
            await repository.set_on_hand(conn, adjustment.warehouse_id, adjustment.sku, on_hand)
            if shortfall:
                await repository.record_shortfall(conn, adjustment, shortfall)
                log.warning("count at %s is %d units short of reserved stock", adjustment.warehouse_id, shortfall)
        await self._release_backorders(conn, adjustment.sku, msg.envelope)

    async def _release_backorders(self, conn: Conn, sku: str, cause: Envelope) -> None:
        for waiting in await repository.waiting_orders(conn, [sku]):
            lines = repository.as_mapping(waiting["lines"])
            available = await repository.lock_stock(conn, lines)
            ship_to = ev.Address.model_validate(waiting["ship_to"])
            decision = domain.route(lines, available, self.warehouses, ship_to.country)
            if isinstance(decision, domain.Reserve):
                await repository.mark_allocated(conn, waiting["order_id"])
                shipment_id = await repository.reserve(conn, waiting["order_id"], decision.warehouse_id, decision.lines)
                await self._announce_allocated(
                    conn, waiting["order_id"], shipment_id, decision, ship_to, waiting["service_level"], cause
                )

    async def _announce_allocated(
        self,
        conn: Conn,
        order_id: UUID,
        shipment_id: UUID,
        decision: domain.Reserve,
        ship_to: ev.Address,
        service_level: ev.ServiceLevel,
        cause: Envelope,
    ) -> None:
        shipment = ev.Shipment(
            shipment_id=shipment_id,
            warehouse_id=decision.warehouse_id,
            lines=[ev.ItemQuantity(sku=s, quantity=q) for s, q in decision.lines.items()],
        )
        allocated = ev.OrderAllocated(
            order_id=order_id, shipments=[shipment], ship_to=ship_to, service_level=service_level
        )
        await enqueue(
            conn,
            [
                (
                    topics.ALLOCATION_EVENTS,
                    str(order_id),
                    wrap(allocated, producer=SERVICE, order_id=order_id, cause=cause),
                )
            ],
        )

    async def on_fulfillment_event(self, conn: Conn, msg: Inbound) -> None:
        shipped = msg.payload
        if isinstance(shipped, ev.OrderShipped):
            await repository.ship_reservations(conn, shipped.pick_task_id)

    def routes(self) -> dict[str, Handler]:
        return {
            topics.ORDERS_VALIDATED.name: self.on_order_validated,
            topics.INVENTORY_ADJUSTMENTS.name: self.on_inventory_adjusted,
            topics.CATALOG_PRODUCTS.name: catalogue.on_product_upserted,
            topics.FULFILLMENT_EVENTS.name: self.on_fulfillment_event,
        }
