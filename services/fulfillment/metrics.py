"""Fulfillment's business metrics, counted from the events it emits once their transaction commits:
shipments handed to carriers, orders shipped and delivered, delivery exceptions, short picks, dropship purchase
orders. Labels are bounded (warehouse, carrier, configured supplier); never an order id or a tracking number."""

from __future__ import annotations

from prometheus_client import Counter

from shared.backbone.metrics import count
from shared.contracts import events as ev

SHIPMENTS_SHIPPED = Counter(
    "oms_shipments_shipped_total", "Shipments handed to a carrier, by warehouse and carrier.", ["warehouse", "carrier"]
)
ORDERS_SHIPPED = Counter("oms_orders_shipped_total", "Orders whose last shipment left the warehouse.")
ORDERS_DELIVERED = Counter("oms_orders_delivered_total", "Orders delivered (every shipment).")
DELIVERY_EXCEPTIONS = Counter("oms_delivery_exceptions_total", "Delivery exceptions reported, by carrier.", ["carrier"])
SHORT_PICKS = Counter("oms_short_picks_total", "Short picks reported, by warehouse.", ["warehouse"])
PURCHASE_ORDERS = Counter(
    "oms_purchase_orders_total",
    "Dropship purchase orders issued and cancelled, and lines declined (rejected, partially_accepted, timed_out),"
    " by supplier.",
    ["supplier", "event"],
)


def count_emitted(payload: ev.Contract) -> None:
    match payload:
        case ev.OrderShipped(warehouse_id=warehouse, carrier=carrier, order_complete=complete):
            count(SHIPMENTS_SHIPPED.labels(warehouse, carrier))
            if complete:
                count(ORDERS_SHIPPED)
        case ev.OrderDelivered():
            count(ORDERS_DELIVERED)
        case ev.DeliveryException(carrier=carrier):
            count(DELIVERY_EXCEPTIONS.labels(carrier))
        case ev.PurchaseOrderIssued(supplier_id=supplier):
            count(PURCHASE_ORDERS.labels(supplier, "issued"))
        case ev.PurchaseOrderCancelled(supplier_id=supplier):
            count(PURCHASE_ORDERS.labels(supplier, "cancelled"))
        case ev.DropshipDeclined(supplier_id=supplier, cause=cause):
            count(PURCHASE_ORDERS.labels(supplier, cause))
        case ev.ShortPickReported(warehouse_id=warehouse):
            count(SHORT_PICKS.labels(warehouse))
