"""Business metrics: the order funnel, labelled only by bounded values (channel, status, reason kind)."""

from __future__ import annotations

from prometheus_client import Counter

ORDERS_RECEIVED = Counter("oms_orders_received_total", "New orders taken in, by channel.", ["channel"])
ORDERS_REJECTED = Counter("oms_orders_rejected_total", "Rejection reasons given, by kind.", ["reason"])
ORDERS_STATUS = Counter(
    "oms_order_status_changes_total", "Orders reaching a status, as recorded by capture.", ["status"]
)
