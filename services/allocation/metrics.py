"""Allocation's business metrics, counted from the outcomes of its operations once their transaction
commits: allocations, splits, backorders, refusals, cancellations, shipments reserved per warehouse; and the
stock levels per warehouse. Labels are bounded (warehouse, scope); never an order id or a SKU."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from shared.backbone.metrics import count

from .orders import Allocated, Backordered, Cancelled, Outcome, Unfulfillable

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
ORDERS_CANCELLED = Counter(
    "oms_orders_cancelled_total", "Cancellations carried out: whole order or some lines.", ["scope"]
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


def count_outcomes(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        match outcome:
            case Allocated(shipments=shipments, backordered=backordered):
                count(ORDERS_ALLOCATED)
                for shipment in shipments:
                    count(SHIPMENTS_ALLOCATED.labels(shipment.warehouse_id))
                if len(shipments) > 1:
                    count(ORDERS_SPLIT)
                if backordered:
                    count(ORDERS_BACKORDERED.labels("partial"))
            case Backordered():
                count(ORDERS_BACKORDERED.labels("whole"))
            case Unfulfillable():
                count(ORDERS_UNFULFILLABLE)
            case Cancelled(lines=lines):
                count(ORDERS_CANCELLED.labels("whole" if lines is None else "partial"))


REPLENISHMENT_SUGGESTIONS = Counter(
    "oms_replenishment_suggestions_total",
    "Replenishment suggestions (draft purchase orders) opened, and closed by a receipt naming them, by warehouse.",
    ["warehouse", "event"],
)


def count_suggestions(event: str, warehouses: list[str]) -> None:
    for warehouse in warehouses:
        count(REPLENISHMENT_SUGGESTIONS.labels(warehouse, event))
