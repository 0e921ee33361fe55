"""Replenishment: the reorder rules per (warehouse, SKU), the forecast stock they watch, the draft purchase orders
(suggestions) they raise for purchasing, and the reorder point that demand history suggests beside the configured
minimum (the formulas are in docs/replenishment.md).

Pure: the handler hands in the stock levels a batch changed and the suggestions still open for them.
"""

from __future__ import annotations

import math
import re
import statistics
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fnmatch import fnmatchcase
from uuid import UUID

Key = tuple[str, str]


@dataclass(frozen=True)
class ReorderRule:
    """When the forecast stock of `sku` at `warehouse_id` falls below `minimum`, order up to `maximum` in whole packs
    of `pack_multiple` from `supplier`, who delivers within `lead_time_days`. `sku` may be a pattern (`REPL-*`)."""

    warehouse_id: str
    sku: str
    minimum: int
    maximum: int
    pack_multiple: int
    supplier: str
    lead_time_days: int

    def __post_init__(self) -> None:
        where = f"reorder rule for {self.sku} at {self.warehouse_id}"
        if not 0 <= self.minimum <= self.maximum:
            raise ValueError(f"{where}: needs 0 <= minimum <= maximum")
        if self.pack_multiple < 1 or self.lead_time_days < 0:
            raise ValueError(f"{where}: needs a pack multiple of at least 1 and a lead time of 0 days or more")
        if not self.supplier:
            raise ValueError(f"{where}: names no supplier")


class ReorderRules:
    """The rules by (warehouse, SKU): a rule naming the SKU itself wins over patterns; among patterns, the first
    listed that matches."""

    def __init__(self, rules: Iterable[ReorderRule] = ()) -> None:
        self.rules = tuple(rules)
        self.exact = {(r.warehouse_id, r.sku): r for r in self.rules if not _is_pattern(r.sku)}
        self.patterns = [r for r in self.rules if _is_pattern(r.sku)]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def for_stock(self, warehouse_id: str, sku: str) -> ReorderRule | None:
        found = self.exact.get((warehouse_id, sku))
        if found is not None:
            return found
        return next((r for r in self.patterns if r.warehouse_id == warehouse_id and fnmatchcase(sku, r.sku)), None)


@dataclass(frozen=True)
class Policy:
    """The rules, and how demand history is read for the suggested reorder point: over the last
    `demand_window_days`, with a safety margin of `service_factor` standard deviations (1.65: about 95% of lead
    times covered when daily demand is roughly normal)."""

    rules: ReorderRules
    demand_window_days: int = 28
    service_factor: float = 1.65

    def __post_init__(self) -> None:
        if self.demand_window_days < 1 or self.service_factor < 0:
            raise ValueError("replenishment: the demand window is at least 1 day, the service factor not negative")


def _is_pattern(sku: str) -> bool:
    return any(c in sku for c in "*?[")


@dataclass(frozen=True)
class OnOrder:
    """Units ordered and not yet received: an open suggestion, due by `expected_by`."""

    suggestion_id: UUID
    quantity: int
    expected_by: date


@dataclass(frozen=True)
class Suggestion:
    """A draft purchase order: `quantity` units of `sku` for `warehouse_id` from the rule's supplier."""

    suggestion_id: UUID
    rule: ReorderRule
    sku: str
    quantity: int
    on_hand: int
    reserved: int
    on_order: int
    expected_by: date

    @property
    def warehouse_id(self) -> str:
        return self.rule.warehouse_id

    @property
    def forecast(self) -> int:
        return self.on_hand - self.reserved + self.on_order

    @property
    def reason(self) -> str:
        rule = self.rule
        return (
            f"forecast {self.forecast} (on hand {self.on_hand} - reserved {self.reserved} + on order {self.on_order})"
            f" is below the minimum {rule.minimum}: {self.quantity} units up to the maximum {rule.maximum}"
            f" in packs of {rule.pack_multiple}"
        )


def on_order_within(on_order: Iterable[OnOrder], today: date, lead_time_days: int) -> int:
    """Units on order due within the lead time: what arrives before anything ordered today could."""
    horizon = today + timedelta(days=lead_time_days)
    return sum(o.quantity for o in on_order if o.expected_by <= horizon)


def forecast(on_hand: int, reserved: int, on_order: int) -> int:
    """The stock to count on over the lead time: on hand, less what is reserved, plus what is on order."""
    return on_hand - reserved + on_order


def order_quantity(forecast_units: int, rule: ReorderRule) -> int:
    """Units to order for a forecast below the minimum: up to the maximum, rounded up to whole packs (at least one)."""
    packs = max(1, math.ceil((rule.maximum - forecast_units) / rule.pack_multiple))
    return packs * rule.pack_multiple


def review(
    rule: ReorderRule,
    sku: str,
    on_hand: int,
    reserved: int,
    open_suggestions: Sequence[OnOrder],
    today: date,
    new_id: Callable[[], UUID] = uuid.uuid4,
) -> Suggestion | None:
    """A new suggestion when the forecast is below the rule's minimum, unless one is open for this warehouse and
    SKU already: purchasing works on that one until a receipt closes it."""
    on_order = on_order_within(open_suggestions, today, rule.lead_time_days)
    expected = forecast(on_hand, reserved, on_order)
    if expected >= rule.minimum or open_suggestions:
        return None
    return Suggestion(
        suggestion_id=new_id(),
        rule=rule,
        sku=sku,
        quantity=order_quantity(expected, rule),
        on_hand=on_hand,
        reserved=reserved,
        on_order=on_order,
        expected_by=today + timedelta(days=rule.lead_time_days),
    )


# A receipt names the suggestion it delivers by its reference: the suggestion id, alone or followed by "/" and the
# warehouse's own numbering (one suggestion may arrive in several deliveries, each a receipt of its own).
_NAMED = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(/.*)?$", re.DOTALL)


def suggestion_named(reference: str) -> UUID | None:
    """The suggestion a receipt's reference names, if it names one."""
    found = _NAMED.match(reference)
    return UUID(found.group(1)) if found else None


# ---- the reorder point demand history suggests ----


def daily_demand(units_by_day: Mapping[date, int], first_day: date, today: date, window_days: int) -> list[int]:
    """Units demanded on each day of the window ending today, days without demand as 0. The window starts no
    earlier than the first day demand was recorded, so a new SKU's average is not diluted by days before it sold."""
    start = max(first_day, today - timedelta(days=window_days - 1))
    return [units_by_day.get(start + timedelta(days=n), 0) for n in range((today - start).days + 1)]


def suggested_reorder_point(daily: Sequence[int], lead_time_days: int, service_factor: float) -> int:
    """Average daily demand x lead time + safety margin, the margin being the service factor x the standard
    deviation of daily demand x the square root of the lead time; rounded up to whole units."""
    if not daily:
        return 0
    average = statistics.fmean(daily)
    margin = service_factor * statistics.pstdev(daily) * math.sqrt(lead_time_days)
    # (less a hair, so that an exact product such as 2.0000000001 from float arithmetic is not rounded up)
    return max(0, math.ceil(average * lead_time_days + margin - 1e-9))


@dataclass(frozen=True)
class ReorderPoint:
    """The reorder point demand history suggests for a (warehouse, SKU), beside the minimum its rule sets."""

    rule: ReorderRule
    sku: str
    suggested: int
    average_daily_demand: float
    days: int


def reorder_point(
    rule: ReorderRule, sku: str, units_by_day: Mapping[date, int], first_day: date, today: date, policy: Policy
) -> ReorderPoint:
    daily = daily_demand(units_by_day, first_day, today, policy.demand_window_days)
    suggested = suggested_reorder_point(daily, rule.lead_time_days, policy.service_factor)
    average = statistics.fmean(daily) if daily else 0.0
    return ReorderPoint(rule, sku, suggested, round(average, 2), len(daily))


def reorder_points(
    policy: Policy, history: Iterable[tuple[str, str, date, int, date]], also: Iterable[Key], today: date
) -> list[ReorderPoint]:
    """The reorder points demand history suggests for every (warehouse, SKU) with a rule that had demand in the
    window (rows of (warehouse, sku, day, units, first day demanded)), and for the pairs in `also` (no demand: 0)."""
    by_key: dict[Key, tuple[dict[date, int], date]] = {}
    for warehouse_id, sku, day, units, first_day in history:
        by_key.setdefault((warehouse_id, sku), ({}, first_day))[0][day] = units
    for key in also:
        by_key.setdefault(key, ({}, today))
    points = []
    for (warehouse_id, sku), (units_by_day, first_day) in sorted(by_key.items()):
        rule = policy.rules.for_stock(warehouse_id, sku)
        if rule is not None:
            points.append(reorder_point(rule, sku, units_by_day, first_day, today, policy))
    return points
