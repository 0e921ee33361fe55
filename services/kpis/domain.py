"""The KPIs operations live by, worked out from one facts row per order (docs/kpis.md gives each definition and
the event it comes from): perfect order rate, order cycle times, first-time fill rates, on-time delivery,
backorder, return and hold figures, order changes and the money they gave back, and cost per order. Pure: the facts
come in, a report goes out."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
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


@dataclass(frozen=True, slots=True)
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


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p of the values at or below it (None for no values)."""
    return counted_percentile(Counter(values), p)


def counted_percentile(counts: Mapping[float, int], p: float) -> float | None:
    """`percentile` of the values counted in `counts` (value: how many times it was seen)."""
    return ranked(counts, max(1, math.ceil(p * sum(counts.values()))))


def ranked(counts: Mapping[float, int], rank: int) -> float | None:
    """The value at `rank` (from 1) of the values counted in `counts`, in rising order."""
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return None


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


class Amounts:
    """Money per currency, added and taken away order by order: a currency is shown while an order counted has it."""

    def __init__(self) -> None:
        self.total: dict[str, Decimal] = {}
        self.orders: Counter[str] = Counter()

    def add(self, amounts: Mapping[str, Decimal], sign: int) -> None:
        for currency, amount in amounts.items():
            self.total[currency] = self.total.get(currency, Decimal(0)) + sign * amount
            self.orders[currency] += sign

    def shown(self) -> dict[str, str]:
        """Added up per currency, to the cent."""
        return {c: str(self.total[c].quantize(Decimal("0.01"))) for c in sorted(self.orders) if self.orders[c]}


# Spans are kept in bands about 1% wide (64 to a doubling), so a percentile sorts the bands and then one band's
# durations: sorting every duration of a day's orders twice per span took most of a round's report.
BANDS_PER_DOUBLING = 64
NOT_POSITIVE = -(10**9)  # below every band of a positive duration (a channel's clock may run ahead of ours)


def band(seconds: float) -> int:
    """The band of a duration: bands rise with the durations they hold."""
    return math.floor(math.log2(seconds) * BANDS_PER_DOUBLING) if seconds > 0 else NOT_POSITIVE


class Spans:
    """Durations in seconds, counted by value within their band, so one can be taken away again; p50 and p90 by
    nearest rank."""

    def __init__(self) -> None:
        self.bands: dict[int, Counter[float]] = {}
        self.in_band: Counter[int] = Counter()

    def add(self, seconds: float, sign: int) -> None:
        key = band(seconds)
        counts = self.bands.get(key)
        if counts is None:  # not setdefault: that would make a Counter for every duration added
            counts = self.bands[key] = Counter()
        counts[seconds] += sign
        self.in_band[key] += sign
        if not counts[seconds]:
            del counts[seconds]
        if not self.in_band[key]:
            del self.in_band[key], self.bands[key]

    def percentile(self, p: float) -> float | None:
        """`percentile` of the durations counted, looking into the one band that holds the rank."""
        rank, seen = max(1, math.ceil(p * sum(self.in_band.values()))), 0
        for key in sorted(self.in_band):
            if seen + self.in_band[key] >= rank:
                return ranked(self.bands[key], rank - seen)
            seen += self.in_band[key]
        return None

    def shown(self) -> dict[str, Any]:
        return {
            "orders": sum(self.in_band.values()),
            "p50_seconds": self.percentile(0.5),
            "p90_seconds": self.percentile(0.9),
        }


@dataclass(frozen=True, slots=True)
class Counted:
    """What one order adds to a tally, and all a tally needs to take it away again: its counts, its spans in seconds,
    its money and its cost. A day's window keeps one per order (services/kpis/window.py), where keeping the facts
    took about 2.5 KiB an order (docs/kpis.md)."""

    counts: tuple[tuple[str, int], ...]  # the counts it adds, by name (those it adds nothing to left out)
    internal: float | None = None  # placed -> ready to ship
    total: float | None = None  # placed -> delivered
    hold_time: float | None = None  # held -> hold ended
    due_back: Mapping[str, Decimal] | None = None
    refunded: Mapping[str, Decimal] | None = None
    cost: Decimal | None = None  # counted when priced


# Orders alike share their counts (most orders of a day add the same few), and prices repeat: a value already seen
# is used again rather than kept once more per order. Bounded: past this many values it starts again.
INTERNED_MOST = 50_000
_interned: dict[Any, Any] = {}


def interned(value: Any) -> Any:
    """An equal value seen before (the same object), or this one, now kept to be used again."""
    if len(_interned) >= INTERNED_MOST:
        _interned.clear()
    return _interned.setdefault(value, value)


def counted(o: OrderFacts, rules: Rules) -> Counted:
    """What the order adds to the KPIs."""
    n: list[tuple[str, int]] = [("placed", 1)]
    if o.cancelled:
        n.append(("cancelled", 1))
    elif o.delivered_at is None:
        n.append(("open", 1))
    total = None
    if o.delivered_at is not None:
        checks = perfect(o, rules)
        n += [("delivered", 1), ("all_four", all(checks.values())), ("returned", o.returned), *checks.items()]
        total = (o.delivered_at - o.placed_at).total_seconds()
    if o.first_outcome is not None and o.ordered:
        backorders = o.first_outcome != UNFULFILLABLE
        lines = filled = backordered = units = reserved_in_all = 0
        for sku, ordered in o.ordered.items():
            reserved = o.first_reserved.get(sku, 0)
            lines += 1
            filled += reserved >= ordered
            backordered += backorders and reserved < ordered
            units += ordered
            reserved_in_all += min(reserved, ordered)
        n += [
            ("allocated", 1),
            ("orders_filled", filled == lines),
            ("lines", lines),
            ("lines_filled", filled),
            ("lines_backordered", backordered),
            ("units", units),
            ("units_reserved", reserved_in_all),
        ]
    hold_time = None
    if o.held_at is not None:
        n += [("held", 1), ("on_hold", o.hold_ended_at is None)]
        if o.hold_ended_at:
            hold_time = (o.hold_ended_at - o.held_at).total_seconds()
    if o.changes_requested or o.changes_applied or o.changes_refused:
        n += [
            ("requested", o.changes_requested),
            ("applied", o.changes_applied),
            ("refused", o.changes_refused),
            ("orders_changed", o.changes_applied > 0),
        ]
    if o.units_shipped:
        n.append(("priced" if o.cost is not None else "unpriced", 1))
    return Counted(
        counts=interned(tuple((name, int(value)) for name, value in n if value)),
        internal=(o.ready_at - o.placed_at).total_seconds() if o.ready_at else None,
        total=total,
        hold_time=hold_time,
        due_back=o.due_back or None,
        refunded=o.refunded or None,
        cost=interned(o.cost) if o.units_shipped and o.cost is not None else None,
    )


class Tally:
    """What the KPIs count over a set of orders, kept as orders join it, change and leave (`count` what each adds,
    and take it away again): the figures over a day then cost what changed since they were last worked out, not
    the day (services/kpis/window.py), and a report over a period is one pass over its orders."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.n: Counter[str] = Counter()  # every count below, by name
        self.internal, self.total, self.hold_time = Spans(), Spans(), Spans()
        self.due_back, self.refunded = Amounts(), Amounts()
        self.cost = Decimal(0)

    def add(self, o: OrderFacts) -> None:
        self.count(counted(o, self.rules))

    def count(self, c: Counted, sign: int = 1) -> None:
        """Add what an order adds (sign 1), or take it away (-1)."""
        n = self.n
        for name, value in c.counts:
            n[name] += sign * value
        if c.internal is not None:
            self.internal.add(c.internal, sign)
        if c.total is not None:
            self.total.add(c.total, sign)
        if c.hold_time is not None:
            self.hold_time.add(c.hold_time, sign)
        if c.due_back:
            self.due_back.add(c.due_back, sign)
        if c.refunded:
            self.refunded.add(c.refunded, sign)
        if c.cost is not None:
            self.cost += sign * c.cost

    def report(self, rejected: int = 0) -> dict[str, Any]:
        """Every KPI over the orders counted (those placed in the period asked about), and how many were refused
        at intake."""
        n, delivered = self.n, self.n["delivered"]
        components = {c: ratio(n[c], delivered) for c in PERFECT_ORDER_COMPONENTS}
        product: float | None = None
        if delivered:
            product = round(math.prod(n[c] / delivered for c in PERFECT_ORDER_COMPONENTS), 4)
        return {
            "orders": {
                "placed": n["placed"],
                "rejected": rejected,
                "delivered": delivered,
                "cancelled": n["cancelled"],
                "open": n["open"],
            },
            "perfect_order": {
                "orders": delivered,
                "components": components,
                "rate_product_of_components": product,
                "rate_all_four": ratio(n["all_four"], delivered),
            },
            "cycle_time": {"internal": self.internal.shown(), "total": self.total.shown()},
            "fill_rate": {
                "orders": n["allocated"],
                "line": ratio(n["lines_filled"], n["lines"]),
                "unit": ratio(n["units_reserved"], n["units"]),
                "order": ratio(n["orders_filled"], n["allocated"]),
            },
            "on_time_delivery": {
                "orders": delivered,
                "rate": components["on_time"],
                "tolerance_days": self.rules.on_time_tolerance_days,
            },
            "backorder_rate": {
                "lines": n["lines"],
                "backordered": n["lines_backordered"],
                "rate": ratio(n["lines_backordered"], n["lines"]),
            },
            "return_rate": {
                "delivered": delivered,
                "returned": n["returned"],
                "rate": ratio(n["returned"], delivered),
            },
            "holds": {"held": n["held"], "on_hold": n["on_hold"], "hold_time": self.hold_time.shown()},
            "changes": {
                "requested": n["requested"],
                "applied": n["applied"],
                "refused": n["refused"],
                "orders_changed": n["orders_changed"],
                "due_back": self.due_back.shown(),
                "refunded": self.refunded.shown(),
            },
            "cost_per_order": {
                "orders": n["priced"],
                "unpriced": n["unpriced"],
                "amount": str((self.cost / n["priced"]).quantize(Decimal("0.01"))) if n["priced"] else None,
            },
        }


def report(orders: Iterable[OrderFacts], rules: Rules, rejected: int = 0) -> dict[str, Any]:
    """Every KPI over these orders (those placed in the period asked about), and how many were refused at intake."""
    tally = Tally(rules)
    for o in orders:
        tally.add(o)
    return tally.report(rejected)


def grouped(
    orders: Iterable[OrderFacts],
    rules: Rules,
    key: Callable[[OrderFacts], str] | None = None,
    rejected: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One report for all the orders, or one per group (channel: `rejected` counts refused orders per channel)."""
    rejected = rejected or {}
    if key is None:
        return [{"group": "all", **report(orders, rules, sum(rejected.values()))}]
    tallies: dict[str, Tally] = {}
    for o in orders:
        tallies.setdefault(key(o), Tally(rules)).add(o)
    return reports(tallies, rules, rejected)


def reports(tallies: Mapping[str, Tally], rules: Rules, rejected: Mapping[str, int]) -> list[dict[str, Any]]:
    """One report per group with an order counted or one refused, by the group's name."""
    names = sorted({name for name, t in tallies.items() if t.n["placed"]} | set(rejected))
    return [
        {"group": name, **(tallies[name] if name in tallies else Tally(rules)).report(rejected.get(name, 0))}
        for name in names
    ]


def shipment_cost(carrier_price: Decimal | None, picks: int, per_pick: Decimal) -> Decimal | None:
    """A shipment's cost: its carrier rate and one pick per line."""
    return None if carrier_price is None else carrier_price + per_pick * picks
