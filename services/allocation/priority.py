"""An order's priority: an explainable score, assessed once when allocation first takes the order and stored with
its components, plus the points the order earns by waiting; and the serving order it sets for waiting orders.

Components (points from `deploy/config/allocation.json`, `priorities`):
- service level: the points of the order's level (overnight above express above standard);
- cut-off: for the levels that race a cut-off, an order that arrived within the window before the cut-off of the
  warehouse nearest to its destination gets up to the cut-off points, the more the closer it came;
- promise: the delivery date promised if it leaves by that warehouse's next cut-off; points per day it comes
  sooner than the horizon (shared.reference.promises: business days, holidays, the cut-off);
- customer tier: the points of the highest tier the order belongs to (VIP, B2B contract: by channel, e-mail
  domain or address, or business account; the explanation names the tier, never the address);
- age: points per hour since it arrived, capped; earned while waiting, so counted when the queue is served.

Serving (the rule in docs/decisions/0003-priorities.md): the score at the moment of serving falls in a band of
`band_width` points; waiting orders are served by band, highest first, and first come first served within a band
(ties on arrival by order id). So an order never waits behind a later order of the same or a lower band.
Pure: the caller passes the arrival, the clock's instant and the rules in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from uuid import UUID

from shared.reference.promises import cutoff_at, promised_delivery, ship_date
from shared.reference.rates import ShippingRules


@dataclass(frozen=True)
class Component:
    """One reason for an order's priority: its name, the points it adds and why, in words."""

    name: str
    points: int
    detail: str


@dataclass(frozen=True)
class Priority:
    """The components assessed when the order arrived; their sum is the base score."""

    components: tuple[Component, ...] = ()

    @property
    def base(self) -> int:
        return sum(c.points for c in self.components)


@dataclass(frozen=True)
class Ranking:
    """How waiting orders stand against each other at one instant: bands of the score with its age points."""

    band_width: int = 100
    age_points_per_hour: int = 0
    age_max_points: int = 0

    def age_points(self, arrived_at: datetime, now: datetime | None) -> int:
        if now is None or now <= arrived_at:
            return 0
        hours = (now - arrived_at) / timedelta(hours=1)
        return min(self.age_max_points, int(hours * self.age_points_per_hour))

    def score(self, priority: Priority, arrived_at: datetime, now: datetime | None) -> int:
        return priority.base + self.age_points(arrived_at, now)

    def band(self, priority: Priority, arrived_at: datetime, now: datetime | None) -> int:
        return self.score(priority, arrived_at, now) // self.band_width

    def turn(self, priority: Priority, arrived_at: datetime, order_id: UUID, now: datetime | None) -> Turn:
        """The key waiting orders are served by: the highest band first, then first come first served."""
        return (-self.band(priority, arrived_at, now), arrived_at, order_id)


Turn = tuple[int, datetime, UUID]
FIRST_COME_FIRST_SERVED = Ranking()  # every order in one band while none has a priority


@dataclass(frozen=True)
class Tier:
    """Customers served ahead of others: by the channel they order through, their e-mail domain or address
    (compared in lower case), or the business account they buy on (listed, or any account at all)."""

    name: str
    points: int
    channels: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    any_account: bool = False

    def includes(self, channel: str, email: str, account: str | None = None) -> bool:
        address = email.strip().lower()
        on_account = account is not None and (self.any_account or account in self.accounts)
        return (
            channel in self.channels
            or address in self.emails
            or address.rpartition("@")[2] in self.domains
            or on_account
        )


@dataclass(frozen=True)
class PriorityRules:
    shipping: ShippingRules  # the calendar and the promise per service level
    service_levels: Mapping[str, int] = field(default_factory=dict)
    cutoff_points: int = 0
    cutoff_window_minutes: int = 120
    cutoff_service_levels: frozenset[str] = frozenset()
    promise_points_per_day: int = 0
    promise_horizon_days: int = 0
    tiers: tuple[Tier, ...] = ()
    ranking: Ranking = FIRST_COME_FIRST_SERVED


@dataclass(frozen=True)
class Arrival:
    """What the priority is assessed from: the order as it arrived, and the warehouse nearest its destination."""

    service_level: str
    channel: str
    email: str
    arrived_at: datetime
    warehouse_id: str
    cutoff: time
    account: str | None = None  # the business account it is bought on


def assess(arrival: Arrival, rules: PriorityRules) -> Priority:
    components = [
        _service_level(arrival, rules),
        _cutoff(arrival, rules),
        _promise(arrival, rules),
        _tier(arrival, rules),
    ]
    return Priority(tuple(c for c in components if c is not None))


def _service_level(arrival: Arrival, rules: PriorityRules) -> Component:
    return Component("service_level", rules.service_levels.get(arrival.service_level, 0), arrival.service_level)


def _cutoff(arrival: Arrival, rules: PriorityRules) -> Component | None:
    if arrival.service_level not in rules.cutoff_service_levels:
        return None
    calendar = rules.shipping.calendar
    leaves = ship_date(arrival.arrived_at, arrival.cutoff, calendar)
    slack = cutoff_at(leaves, arrival.cutoff, calendar) - arrival.arrived_at
    window = timedelta(minutes=rules.cutoff_window_minutes)
    points = int(rules.cutoff_points * (window - slack) / window) if slack < window else 0
    minutes = int(slack / timedelta(minutes=1))
    return Component(
        "cutoff", points, f"{minutes} min before the {arrival.cutoff:%H:%M} cut-off at {arrival.warehouse_id}"
    )


def _promise(arrival: Arrival, rules: PriorityRules) -> Component | None:
    level = arrival.service_level
    if level not in rules.shipping.promise_business_days:
        return None
    promised = promised_delivery(level, arrival.arrived_at, arrival.cutoff, rules.shipping)
    days = (promised - arrival.arrived_at.astimezone(rules.shipping.calendar.zone).date()).days
    points = rules.promise_points_per_day * max(0, rules.promise_horizon_days - days)
    return Component("promise", points, f"delivery promised {promised.isoformat()}, in {days} days")


def _tier(arrival: Arrival, rules: PriorityRules) -> Component | None:
    tiers = [t for t in rules.tiers if t.includes(arrival.channel, arrival.email, arrival.account)]
    if not tiers:
        return None
    best = max(tiers, key=lambda t: (t.points, t.name))
    return Component("tier", best.points, best.name)


def explain(priority: Priority, arrived_at: datetime, now: datetime | None, ranking: Ranking) -> dict[str, object]:
    """The priority as operators see it: every component with its points, the age earned so far, the score and
    its band."""
    components = [{"name": c.name, "points": c.points, "detail": c.detail} for c in priority.components]
    age = ranking.age_points(arrived_at, now)
    components.append(
        {
            "name": "age",
            "points": age,
            "detail": f"{ranking.age_points_per_hour} per hour waited, at most {ranking.age_max_points}",
        }
    )
    score = priority.base + age
    return {"score": score, "band": score // ranking.band_width, "components": components}


def summary(priority: Priority, arrived_at: datetime, now: datetime | None, ranking: Ranking) -> str:
    """One line for a decision's reason: `priority 372 (band 3: express 300, cutoff 42, promise 30, age 0)`."""
    parts = [f"{c.detail if c.name in ('service_level', 'tier') else c.name} {c.points}" for c in priority.components]
    parts.append(f"age {ranking.age_points(arrived_at, now)}")
    score = ranking.score(priority, arrived_at, now)
    return f"priority {score} (band {score // ranking.band_width}: {', '.join(parts)})"
