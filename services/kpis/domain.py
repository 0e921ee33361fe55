"""The KPIs operations live by, worked out from one facts row per order (docs/kpis.md gives each definition and
the event it comes from): perfect order rate, order cycle times, first-time fill rates, on-time delivery,
backorder, return and hold figures, order changes and the money they gave back, and cost per order. Pure: the facts
come in, a report goes out."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

# What a first allocation decided: reserved what it could (the rest backordered), nothing yet, or refused.
ALLOCATED, BACKORDERED, UNFULFILLABLE = "allocated", "backordered", "unfulfillable"
PERFECT_ORDER_COMPONENTS = ("on_time", "in_full", "damage_free", "correct_documents")


@dataclass(frozen=True)
class Rules:
    """What the definitions leave to the business: the days a delivery may be late and still count on time, the
    return reasons that mean damage (a code or its parent), and the words of a carrier's exception that mean the
    address or the documents were wrong."""

    on_time_tolerance_days: int = 0
    damage_reasons: tuple[str, ...] = ("damaged",)
    document_exception_words: tuple[str, ...] = ("address", "document", "label", "customs", "invoice")
    timezone: str = "UTC"

    def is_damage(self, reason: str) -> bool:
        return any(reason == r or reason.startswith(r + ".") for r in self.damage_reasons)

    def is_document_exception(self, detail: str) -> bool:
        words = detail.lower()
        return any(w.lower() in words for w in self.document_exception_words)


@dataclass(frozen=True)
class OrderFacts:
    """What the events said of one order, as of now (None: not happened yet)."""

    order_id: Any
    channel: str
    placed_at: datetime
    ordered: Mapping[str, int] = field(default_factory=dict)  # units per SKU (validated orders only)
    first_outcome: str | None = None  # ALLOCATED, BACKORDERED, UNFULFILLABLE
    first_reserved: Mapping[str, int] = field(default_factory=dict)  # units per SKU the first allocation reserved
    held_at: datetime | None = None
    hold_ended_at: datetime | None = None  # the last hold released, or the order cancelled from hold
    ready_at: datetime | None = None  # its last shipment packed and handed to the carrier
    delivered_at: datetime | None = None
    promised: date | None = None  # the latest delivery date its shipments promised
    units_shipped: int = 0
    units_cancelled: int = 0  # lines the customer cancelled while the order went on: no longer owed
    document_exception: bool = False
    returned: bool = False
    damaged: bool = False
    cancelled: bool = False
    cost: Decimal | None = None  # carrier rates plus picks; None when a shipment cannot be priced
    changes_requested: int = 0  # changes capture passed on (paid for, when they cost more)
    changes_applied: int = 0
    changes_refused: int = 0  # by fulfillment: the warehouse had started
    due_back: Mapping[str, Decimal] = field(default_factory=dict)  # per currency, what applied changes made due back
    refunded: Mapping[str, Decimal] = field(default_factory=dict)  # per currency, what of it the provider paid back
    changed_to: Mapping[str, int] | None = None  # units per SKU after the latest change applied (None: never changed)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p of the values at or below it (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def on_time(order: OrderFacts, rules: Rules) -> bool:
    if order.delivered_at is None or order.promised is None:
        return False
    delivered_on = order.delivered_at.astimezone(ZoneInfo(rules.timezone)).date()
    return delivered_on <= order.promised + timedelta(days=rules.on_time_tolerance_days)


def in_full(order: OrderFacts) -> bool:
    """Shipped what the order holds (as its latest change left it), less what the customer cancelled."""
    ordered = order.ordered if order.changed_to is None else order.changed_to
    return bool(ordered) and order.units_shipped >= sum(ordered.values()) - order.units_cancelled


def perfect(order: OrderFacts, rules: Rules) -> dict[str, bool]:
    return {
        "on_time": on_time(order, rules),
        "in_full": in_full(order),
        "damage_free": not order.damaged,
        "correct_documents": not order.document_exception,
    }


def _money(amounts: Iterable[Mapping[str, Decimal]]) -> dict[str, str]:
    """Amounts added up per currency, to the cent."""
    total: dict[str, Decimal] = {}
    for each in amounts:
        for currency, amount in each.items():
            total[currency] = total.get(currency, Decimal(0)) + amount
    return {c: str(total[c].quantize(Decimal("0.01"))) for c in sorted(total)}


def _hours(spans: Iterable[timedelta]) -> dict[str, Any]:
    seconds = [s.total_seconds() for s in spans]
    p50, p90 = percentile(seconds, 0.5), percentile(seconds, 0.9)
    return {"orders": len(seconds), "p50_seconds": p50, "p90_seconds": p90}


def report(orders: Iterable[OrderFacts], rules: Rules, rejected: int = 0) -> dict[str, Any]:
    """Every KPI over these orders (those placed in the period asked about), and how many were refused at intake."""
    orders = list(orders)
    delivered = [o for o in orders if o.delivered_at is not None]
    checks = [perfect(o, rules) for o in delivered]
    components = {c: ratio(sum(k[c] for k in checks), len(checks)) for c in PERFECT_ORDER_COMPONENTS}
    product: float | None = None
    if checks:
        product = round(math.prod(sum(k[c] for k in checks) / len(checks) for c in PERFECT_ORDER_COMPONENTS), 4)
    allocated = [o for o in orders if o.first_outcome is not None and o.ordered]
    lines = [(o, sku, units) for o in allocated for sku, units in sorted(o.ordered.items())]
    filled = [(o, sku, units) for o, sku, units in lines if o.first_reserved.get(sku, 0) >= units]
    backordered = [
        (o, sku, units)
        for o, sku, units in lines
        if o.first_outcome != UNFULFILLABLE and o.first_reserved.get(sku, 0) < units
    ]
    held = [o for o in orders if o.held_at is not None]
    hold_times = [o.hold_ended_at - o.held_at for o in held if o.held_at and o.hold_ended_at]
    priced = [o.cost for o in orders if o.units_shipped and o.cost is not None]
    return {
        "orders": {
            "placed": len(orders),
            "rejected": rejected,
            "delivered": len(delivered),
            "cancelled": sum(o.cancelled for o in orders),
            "open": sum(o.delivered_at is None and not o.cancelled for o in orders),
        },
        "perfect_order": {
            "orders": len(checks),
            "components": components,
            "rate_product_of_components": product,
            "rate_all_four": ratio(sum(all(k.values()) for k in checks), len(checks)),
        },
        "cycle_time": {
            "internal": _hours(o.ready_at - o.placed_at for o in orders if o.ready_at),
            "total": _hours(o.delivered_at - o.placed_at for o in delivered if o.delivered_at),
        },
        "fill_rate": {
            "orders": len(allocated),
            "line": ratio(len(filled), len(lines)),
            "unit": ratio(
                sum(min(o.first_reserved.get(sku, 0), units) for o, sku, units in lines), sum(u for *_, u in lines)
            ),
            "order": ratio(
                sum(all(o.first_reserved.get(s, 0) >= u for s, u in o.ordered.items()) for o in allocated),
                len(allocated),
            ),
        },
        "on_time_delivery": {
            "orders": len(checks),
            "rate": components["on_time"],
            "tolerance_days": rules.on_time_tolerance_days,
        },
        "backorder_rate": {
            "lines": len(lines),
            "backordered": len(backordered),
            "rate": ratio(len(backordered), len(lines)),
        },
        "return_rate": {
            "delivered": len(delivered),
            "returned": sum(o.returned for o in delivered),
            "rate": ratio(sum(o.returned for o in delivered), len(delivered)),
        },
        "holds": {
            "held": len(held),
            "on_hold": sum(o.hold_ended_at is None for o in held),
            "hold_time": _hours(hold_times),
        },
        "changes": {
            "requested": sum(o.changes_requested for o in orders),
            "applied": sum(o.changes_applied for o in orders),
            "refused": sum(o.changes_refused for o in orders),
            "orders_changed": sum(o.changes_applied > 0 for o in orders),
            "due_back": _money(o.due_back for o in orders),
            "refunded": _money(o.refunded for o in orders),
        },
        "cost_per_order": {
            "orders": len(priced),
            "unpriced": sum(1 for o in orders if o.units_shipped and o.cost is None),
            "amount": str((sum(priced, Decimal(0)) / len(priced)).quantize(Decimal("0.01"))) if priced else None,
        },
    }


def grouped(
    orders: Iterable[OrderFacts],
    rules: Rules,
    key: Callable[[OrderFacts], str] | None = None,
    rejected: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One report for all the orders, or one per group (channel: `rejected` counts refused orders per channel)."""
    orders, rejected = list(orders), rejected or {}
    if key is None:
        return [{"group": "all", **report(orders, rules, sum(rejected.values()))}]
    groups: dict[str, list[OrderFacts]] = {name: [] for name in rejected}
    for o in orders:
        groups.setdefault(key(o), []).append(o)
    return [{"group": name, **report(groups[name], rules, rejected.get(name, 0))} for name in sorted(groups)]


def shipment_cost(carrier_price: Decimal | None, picks: int, per_pick: Decimal) -> Decimal | None:
    """A shipment's cost: its carrier rate and one pick per line."""
    return None if carrier_price is None else carrier_price + per_pick * picks
