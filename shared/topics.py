"""The topic registry: every topic, the payloads it carries and its single writer.

Topics written by outside parties carry the bare contract JSON; topics the services write carry the
envelope (shared.envelope) around the payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import events as ev
from shared.settings import SERVICES


@dataclass(frozen=True)
class Topic:
    name: str
    payloads: tuple[type[ev.Contract], ...]
    writer: str
    description: str
    partitions: int = 6

    @property
    def external(self) -> bool:
        """Written outside the services: bare contract JSON rather than an envelope."""
        return self.writer not in SERVICES


ORDERS_SUBMITTED = Topic(
    "oms.orders.submitted",
    (ev.SubmittedOrder,),
    "channel adapters",
    "Orders from channel adapters, key `<channel>:<external_id>`.",
)
CANCEL_REQUESTS = Topic(
    "oms.orders.cancel-requests",
    (ev.CancelRequested,),
    "channel adapters",
    "Cancel requests from channels, key `<channel>:<external_id>`.",
)
CATALOG_PRODUCTS = Topic("oms.catalog.products", (ev.ProductUpserted,), "catalogue", "Product upserts, key sku.")
INVENTORY_ADJUSTMENTS = Topic(
    "oms.inventory.adjustments",
    (ev.InventoryAdjusted,),
    "warehouses",
    "Receipts and stock counts, key `<warehouse_id>:<sku>`.",
)
WAREHOUSE_EVENTS = Topic(
    "oms.warehouse.events", (ev.WarehouseReported,), "warehouses", "Picked, packed and short-picked reports."
)
CARRIER_EVENTS = Topic(
    "oms.carrier.events", (ev.CarrierReported,), "carriers", "Tracking updates, key tracking number."
)
ORDERS_VALIDATED = Topic(
    "oms.orders.validated", (ev.OrderValidated,), "capture", "Orders that passed validation, key order id."
)
ORDERS_REJECTED = Topic(
    "oms.orders.rejected", (ev.OrderRejected,), "capture", "Orders refused with their reasons, key order id."
)
ORDER_CANCELLATIONS = Topic(
    "oms.orders.cancellations",
    (ev.OrderCancellationRequested,),
    "capture",
    "Cancellations capture accepted for orders not yet shipped, key order id.",
)
ALLOCATION_EVENTS = Topic(
    "oms.allocation.events",
    (ev.OrderAllocated, ev.OrderBackordered, ev.OrderUnfulfillable, ev.OrderCancelled, ev.StockCountShort),
    "allocation",
    "Reservations, backorders, releases and stock count discrepancies, key order id (or warehouse:sku).",
)
PICK_TASKS = Topic(
    "oms.warehouse.pick-tasks",
    (ev.PickTaskReleased, ev.PickTaskCancelled),
    "fulfillment",
    "One pick task per shipment and its withdrawal, key warehouse id.",
)
FULFILLMENT_EVENTS = Topic(
    "oms.fulfillment.events",
    (
        ev.OrderShipped,
        ev.OrderDelivered,
        ev.DeliveryException,
        ev.ShortPickReported,
        ev.CancellationAccepted,
        ev.CancellationRefused,
    ),
    "fulfillment",
    "Shipments, deliveries, delivery exceptions, short picks and cancellation outcomes, key order id.",
)

BUSINESS_TOPICS = (
    ORDERS_SUBMITTED,
    CANCEL_REQUESTS,
    CATALOG_PRODUCTS,
    INVENTORY_ADJUSTMENTS,
    WAREHOUSE_EVENTS,
    CARRIER_EVENTS,
    ORDERS_VALIDATED,
    ORDERS_REJECTED,
    ORDER_CANCELLATIONS,
    ALLOCATION_EVENTS,
    PICK_TASKS,
    FULFILLMENT_EVENTS,
)


def dead_letter_topic(service: str) -> str:
    """Each service writes its own dead-letter topic; the origin topic is in the record's headers."""
    return f"oms.dead-letter.{service}"


DEAD_LETTER_TOPICS = tuple(
    Topic(dead_letter_topic(s), (), s, f"Messages {s} could not process, with reason and origin.", 3) for s in SERVICES
)
TOPICS = BUSINESS_TOPICS + DEAD_LETTER_TOPICS
BY_NAME = {t.name: t for t in TOPICS}
