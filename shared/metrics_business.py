"""Business metrics: the order funnel, labelled only by bounded values (channel, status, reason kind,
warehouse, carrier, message kind); never by order id, customer or SKU.

The lifecycle counters (validated, allocated, split, backordered, shipped, delivered, cancelled, ...) are
counted where the service that decides them writes the event to its outbox (`count_emitted`, called by
shared.outbox.enqueue), after that transaction commits: the event and the count exist together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import count

ORDERS_RECEIVED = Counter("oms_orders_received_total", "New orders taken in, by channel.", ["channel"])
REJECTION_REASONS = Counter(
    "oms_order_rejection_reasons_total",
    "Reasons given for rejected orders, by kind (one order may have several).",
    ["reason"],
)
ORDERS_STATUS = Counter(
    "oms_order_status_changes_total", "Orders reaching a status, as recorded by capture.", ["status"]
)

ORDERS_VALIDATED = Counter("oms_orders_validated_total", "Orders that passed validation, by channel.", ["channel"])
ORDERS_REJECTED = Counter("oms_orders_rejected_total", "Orders refused at intake, by channel.", ["channel"])
ORDERS_ALLOCATED = Counter(
    "oms_orders_allocated_total",
    "Allocations that reserved stock for an order (first allocation, backorder release or re-route).",
)
ORDERS_SPLIT = Counter("oms_orders_split_total", "Allocations that split an order across several warehouses.")
ORDERS_BACKORDERED = Counter(
    "oms_orders_backordered_total",
    "Orders put on backorder: whole (nothing reserved) or partial (some lines wait for stock).",
    ["scope"],
)
ORDERS_UNFULFILLABLE = Counter("oms_orders_unfulfillable_total", "Orders refused by allocation under their policy.")
SHIPMENTS_ALLOCATED = Counter("oms_shipments_allocated_total", "Shipments reserved, by warehouse.", ["warehouse"])
SHIPMENTS_SHIPPED = Counter(
    "oms_shipments_shipped_total", "Shipments handed to a carrier, by warehouse and carrier.", ["warehouse", "carrier"]
)
ORDERS_SHIPPED = Counter("oms_orders_shipped_total", "Orders whose last shipment left the warehouse.")
ORDERS_DELIVERED = Counter("oms_orders_delivered_total", "Orders delivered (every shipment).")
ORDERS_CANCELLED = Counter(
    "oms_orders_cancelled_total", "Cancellations carried out: whole order or some lines.", ["scope"]
)
DELIVERY_EXCEPTIONS = Counter("oms_delivery_exceptions_total", "Delivery exceptions reported, by carrier.", ["carrier"])
SHORT_PICKS = Counter("oms_short_picks_total", "Short picks reported, by warehouse.", ["warehouse"])
NOTIFICATIONS_SENT = Counter(
    "oms_notifications_sent_total", "Customer messages handed to the mail server, by kind.", ["kind"]
)

# Latency from intake (capture's received_at) to a lifecycle step, observed by capture when it records the
# step. Buckets are fine-grained up to a few seconds (the pipeline itself), coarse beyond (backorders,
# real warehouses and carriers take hours or days).
PICK_TASK_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
DELIVERED_BUCKETS = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60, 300, 3600, 21600, 86400, 172800, 345600, 604800)
INTAKE_TO_PICK_TASK_NAME = "oms_order_intake_to_pick_task_seconds"
INTAKE_TO_DELIVERED_NAME = "oms_order_intake_to_delivered_seconds"
INTAKE_TO_PICK_TASK = Histogram(
    INTAKE_TO_PICK_TASK_NAME,
    "Time from intake to a pick task released to a warehouse (once per pick task).",
    buckets=PICK_TASK_BUCKETS,
)
INTAKE_TO_DELIVERED = Histogram(
    INTAKE_TO_DELIVERED_NAME, "Time from intake to the order delivered.", buckets=DELIVERED_BUCKETS
)

# Available to promise per warehouse, as aggregates so that the series stay one per warehouse whatever the
# size of the catalogue (refreshed periodically by allocation).
STOCK_SKUS_LOW = Gauge(
    "oms_stock_low_skus",
    "SKUs stocked in a warehouse whose available-to-promise is at or below the threshold.",
    ["warehouse"],
)
STOCK_SKUS_OUT = Gauge(
    "oms_stock_out_skus", "SKUs stocked in a warehouse with nothing available to promise.", ["warehouse"]
)
STOCK_AVAILABLE = Gauge("oms_stock_available_units", "Units available to promise in a warehouse.", ["warehouse"])
STOCK_LOW_THRESHOLD = Gauge(
    "oms_stock_low_threshold_units", "Available-to-promise at or below which a SKU counts as low."
)


def emitted_increments(event_type: str, payload: Mapping[str, Any]) -> Iterator[Any]:
    """The business counters an emitted event moves (one item per increment of one)."""
    match event_type:
        case "OrderValidated":
            yield ORDERS_VALIDATED.labels(payload["channel"])
        case "OrderRejected":
            yield ORDERS_REJECTED.labels(payload["channel"])
        case "OrderAllocated":
            yield ORDERS_ALLOCATED
            shipments = payload.get("shipments", [])
            for shipment in shipments:
                yield SHIPMENTS_ALLOCATED.labels(shipment["warehouse_id"])
            if len(shipments) > 1:
                yield ORDERS_SPLIT
            if payload.get("backordered"):
                yield ORDERS_BACKORDERED.labels("partial")
        case "OrderBackordered":
            yield ORDERS_BACKORDERED.labels("whole")
        case "OrderUnfulfillable":
            yield ORDERS_UNFULFILLABLE
        case "OrderShipped":
            yield SHIPMENTS_SHIPPED.labels(payload["warehouse_id"], payload["carrier"])
            if payload.get("order_complete", True):
                yield ORDERS_SHIPPED
        case "OrderDelivered":
            yield ORDERS_DELIVERED
        case "OrderCancelled":
            yield ORDERS_CANCELLED.labels("whole" if payload.get("lines") is None else "partial")
        case "DeliveryException":
            yield DELIVERY_EXCEPTIONS.labels(payload["carrier"])
        case "ShortPickReported":
            yield SHORT_PICKS.labels(payload["warehouse_id"])


def count_emitted(event_type: str, payload: Mapping[str, Any]) -> None:
    for metric in emitted_increments(event_type, payload):
        count(metric)
