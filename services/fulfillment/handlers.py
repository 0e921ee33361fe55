"""Fulfillment's handlers: release pick tasks, follow the warehouse's picking and packing, ship with a
carrier and follow the carrier to delivery."""

from __future__ import annotations

import logging

from shared import events as ev
from shared import topics
from shared.consumer import Handler
from shared.db import Conn
from shared.envelope import now, wrap
from shared.kafka import Inbound
from shared.outbox import enqueue

from . import domain, repository

SERVICE = "fulfillment"
log = logging.getLogger(__name__)


class FulfillmentHandlers:
    async def on_allocation_event(self, conn: Conn, msg: Inbound) -> None:
        allocated = msg.payload
        if not isinstance(allocated, ev.OrderAllocated):
            return  # backorders wait in allocation; nothing to pick yet
        for shipment in allocated.shipments:
            task = ev.PickTaskReleased(
                pick_task_id=shipment.shipment_id,
                order_id=allocated.order_id,
                warehouse_id=shipment.warehouse_id,
                lines=shipment.lines,
                ship_to=allocated.ship_to,
                service_level=allocated.service_level,
                created_at=now(),
            )
            if await repository.insert_pick_task(conn, task):
                event = wrap(
                    task,
                    producer=SERVICE,
                    order_id=allocated.order_id,
                    cause=msg.envelope,
                    occurred_at=task.created_at,
                )
                await enqueue(conn, [(topics.PICK_TASKS, shipment.warehouse_id, event)])

    async def on_warehouse_reported(self, conn: Conn, msg: Inbound) -> None:
        report = msg.payload
        assert isinstance(report, ev.WarehouseReported)
        task = await repository.lock_pick_task(conn, report.pick_task_id)
        if task is None or task["warehouse_id"] != report.warehouse_id:
            raise LookupError(f"no pick task {report.pick_task_id} at warehouse {report.warehouse_id}")
        if report.kind == "picked" and task["status"] == "released":
            await repository.set_status(conn, report.pick_task_id, "picked")
        elif report.kind == "packed" and task["status"] in ("released", "picked"):
            await repository.set_status(conn, report.pick_task_id, "packed")
            carrier = domain.choose_carrier(task["service_level"])
            tracking = domain.tracking_number(carrier, await repository.next_tracking_sequence(conn))
            weight = report.package.weight_grams if report.package else None
            shipped_at = now()
            await repository.insert_shipment(
                conn, tracking, report.pick_task_id, task["order_id"], carrier.code, weight, shipped_at
            )
            shipped = ev.OrderShipped(
                order_id=task["order_id"],
                pick_task_id=report.pick_task_id,
                warehouse_id=report.warehouse_id,
                carrier=carrier.code,
                tracking_number=tracking,
                shipped_at=shipped_at,
            )
            await enqueue(
                conn,
                [
                    (
                        topics.FULFILLMENT_EVENTS,
                        str(task["order_id"]),
                        wrap(
                            shipped,
                            producer=SERVICE,
                            order_id=task["order_id"],
                            cause=msg.envelope,
                            occurred_at=shipped_at,
                        ),
                    )
                ],
            )
        elif report.kind == "short_picked" and task["status"] in ("released", "picked"):
            # Re-routing short picks belongs to allocation (a later step); the task is marked for operators.
            await repository.set_status(conn, report.pick_task_id, "short_picked")
            log.warning("pick task %s short-picked at %s", report.pick_task_id, report.warehouse_id)

    async def on_carrier_reported(self, conn: Conn, msg: Inbound) -> None:
        report = msg.payload
        assert isinstance(report, ev.CarrierReported)
        shipment = await repository.lock_shipment(conn, report.tracking_number)
        if shipment is None:
            raise LookupError(f"no shipment with tracking number {report.tracking_number}")
        if shipment["delivered_at"] is not None:
            return
        delivered_at = report.occurred_at if report.kind == "delivered" else None
        await repository.record_carrier_status(conn, report.tracking_number, report.kind, delivered_at)
        if delivered_at and domain.order_delivered(await repository.shipments_delivered(conn, shipment["order_id"])):
            delivered = ev.OrderDelivered(order_id=shipment["order_id"], delivered_at=delivered_at)
            await enqueue(
                conn,
                [
                    (
                        topics.FULFILLMENT_EVENTS,
                        str(shipment["order_id"]),
                        wrap(delivered, producer=SERVICE, order_id=shipment["order_id"], cause=msg.envelope),
                    )
                ],
            )

    def routes(self) -> dict[str, Handler]:
        return {
            topics.ALLOCATION_EVENTS.name: self.on_allocation_event,
            topics.WAREHOUSE_EVENTS.name: self.on_warehouse_reported,
            topics.CARRIER_EVENTS.name: self.on_carrier_reported,
        }
