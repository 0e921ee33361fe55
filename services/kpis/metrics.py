"""The KPIs as Prometheus gauges, per channel (the only label that varies; never an order, customer or SKU), worked
out over the orders placed in the last `metrics_window_hours`, plus the orders on hold now and the oldest hold's
age (what the alert rules in deploy/prometheus/alerts.yml watch)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Gauge

PERFECT_ORDER = Gauge(
    "oms_kpi_perfect_order_ratio",
    "Delivered orders on time, in full, damage-free and with correct documents (SCOR: the share meeting all four).",
    ["channel"],
)
PERFECT_ORDER_COMPONENT = Gauge(
    "oms_kpi_perfect_order_component_ratio",
    "Each component of the perfect order over delivered orders (their product is APQC's perfect order rate).",
    ["channel", "component"],
)
ORDERS_MEASURED = Gauge(
    "oms_kpi_orders_delivered",
    "Orders placed in the window and delivered: what the perfect order rate counts.",
    ["channel"],
)
ON_TIME = Gauge("oms_kpi_on_time_delivery_ratio", "Delivered orders delivered by their promised date.", ["channel"])
FILL_RATE = Gauge(
    "oms_kpi_fill_rate_ratio",
    "First-time fill rate (before any backorder is released), by line, unit and order.",
    ["channel", "level"],
)
BACKORDER = Gauge("oms_kpi_backorder_ratio", "Lines backordered at the first allocation per line ordered.", ["channel"])
RETURNS = Gauge("oms_kpi_return_ratio", "Delivered orders with an authorised return.", ["channel"])
CYCLE = Gauge(
    "oms_kpi_order_cycle_seconds",
    "Order cycle time, internal (placed to ready to ship) and total (placed to delivered), p50 and p90.",
    ["channel", "span", "quantile"],
)
COST = Gauge(
    "oms_kpi_cost_per_order",
    "Carrier rates plus picks per shipped order, in the cost model's currency.",
    ["channel", "currency"],
)
ON_HOLD = Gauge("oms_kpi_orders_on_hold", "Orders on hold now.", ["channel"])
OLDEST_HOLD = Gauge("oms_kpi_oldest_hold_age_seconds", "Age of the oldest hold still on an order.", ["channel"])

WINDOWED = (
    PERFECT_ORDER,
    PERFECT_ORDER_COMPONENT,
    ORDERS_MEASURED,
    ON_TIME,
    FILL_RATE,
    BACKORDER,
    RETURNS,
    CYCLE,
    COST,
)


def _set(gauge: Gauge, value: Any, *labels: str) -> None:
    if value is not None:
        gauge.labels(*labels).set(float(value))


def publish(groups: Sequence[dict[str, Any]], currency: str) -> None:
    """Replace the windowed gauges with these per-channel reports (no await between: a scrape sees all or none)."""
    for gauge in WINDOWED:
        gauge.clear()
    for g in groups:
        channel, perfect = g["group"], g["perfect_order"]
        _set(ORDERS_MEASURED, perfect["orders"], channel)
        _set(PERFECT_ORDER, perfect["rate_all_four"], channel)
        for component, value in perfect["components"].items():
            _set(PERFECT_ORDER_COMPONENT, value, channel, component)
        _set(ON_TIME, g["on_time_delivery"]["rate"], channel)
        for level in ("line", "unit", "order"):
            _set(FILL_RATE, g["fill_rate"][level], channel, level)
        _set(BACKORDER, g["backorder_rate"]["rate"], channel)
        _set(RETURNS, g["return_rate"]["rate"], channel)
        for span, figures in g["cycle_time"].items():
            _set(CYCLE, figures["p50_seconds"], channel, span, "0.5")
            _set(CYCLE, figures["p90_seconds"], channel, span, "0.9")
        _set(COST, g["cost_per_order"]["amount"], channel, currency)


def publish_holds(rows: Sequence[Any], now: datetime) -> None:
    ON_HOLD.clear()
    OLDEST_HOLD.clear()
    for r in rows:
        ON_HOLD.labels(r["channel"]).set(r["orders"])
        OLDEST_HOLD.labels(r["channel"]).set((now - r["oldest"]).total_seconds())
