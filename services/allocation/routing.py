"""Routing rules: which warehouses ship which units of an order. Pure functions over the stock a caller
has locked; no I/O.

The rules, in order:
1. one warehouse that can ship every line, the nearest to the destination (ties: configured priority);
2. otherwise the fewest warehouses that together can, nearest first, splitting no line more than needed;
3. otherwise what can ship now, and the rest is missing (the caller backorders or rejects it per policy).
A channel may cap the number of shipments one decision creates; the cap turns rule 2 into rule 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from shared.reference.warehouses import Warehouse

from .geography import Location, destination, distance_km

Lines = Mapping[str, int]
# Shipments of a routing decision: (warehouse id, units per sku), nearest warehouse first.
Shipments = tuple[tuple[str, dict[str, int]], ...]
# Available to promise per (warehouse id, sku).
Availability = Mapping[tuple[str, str], int]
DEFAULT_MAX_SHIPMENTS = 3


@dataclass(frozen=True)
class Candidate:
    """A warehouse as one order sees it: how far it is from the destination (None when unknown)."""

    warehouse_id: str
    distance_km: float | None
    priority: int


@dataclass(frozen=True)
class Network:
    """The routing configuration: warehouses (with locations and safety stock), per-SKU safety stock
    overrides, and per-channel caps on shipments."""

    warehouses: tuple[Warehouse, ...]
    sku_safety_stock: Mapping[str, int] = field(default_factory=dict)
    warehouse_sku_safety_stock: Mapping[tuple[str, str], int] = field(default_factory=dict)
    channel_max_shipments: Mapping[str, int] = field(default_factory=dict)
    default_max_shipments: int = DEFAULT_MAX_SHIPMENTS

    @property
    def warehouse_ids(self) -> tuple[str, ...]:
        return tuple(w.id for w in self.warehouses)

    def safety_stock(self, warehouse_id: str, sku: str) -> int:
        """The most specific setting wins: (warehouse, sku), then sku, then the warehouse's default."""
        if (warehouse_id, sku) in self.warehouse_sku_safety_stock:
            return self.warehouse_sku_safety_stock[(warehouse_id, sku)]
        if sku in self.sku_safety_stock:
            return self.sku_safety_stock[sku]
        return next((w.safety_stock for w in self.warehouses if w.id == warehouse_id), 0)

    def max_shipments(self, channel: str) -> int:
        return max(1, self.channel_max_shipments.get(channel, self.default_max_shipments))

    def candidates(self, country: str, postal_code: str | None = None) -> list[Candidate]:
        """Every warehouse, nearest to the destination first; equal distances (to the km, or unknown) by priority."""
        point = destination(country, postal_code)
        found = [Candidate(w.id, _distance(w, point), w.priority) for w in self.warehouses]
        return sorted(found, key=lambda c: (_km(c.distance_km), c.priority, c.warehouse_id))


def _distance(warehouse: Warehouse, point: Location | None) -> float | None:
    if point is None or warehouse.latitude is None or warehouse.longitude is None:
        return None
    return distance_km(Location(warehouse.latitude, warehouse.longitude), point)


def _km(distance: float | None) -> float:
    return float("inf") if distance is None else float(round(distance))


@dataclass(frozen=True)
class Route:
    """A routing decision: shipments as (warehouse id, lines), what no shipment covers, and why."""

    shipments: Shipments
    missing: dict[str, int]
    reason: str

    @property
    def complete(self) -> bool:
        return not self.missing


def route(wanted: Lines, available: Availability, candidates: Sequence[Candidate], max_shipments: int) -> Route:
    """Decide where the wanted units ship from (rules 1-3 above)."""
    wanted = {sku: q for sku, q in wanted.items() if q > 0}
    if not wanted:
        return Route((), {}, "nothing to route")
    order = [c.warehouse_id for c in candidates]
    total = sum(wanted.values())
    limit = max(1, min(max_shipments, len(order)))
    best: tuple[int, tuple[str, ...]] = (0, ())
    for size in range(1, limit + 1):
        for group in combinations(order, size):
            units = _coverable(wanted, available, group)
            if units == total:
                return _full(wanted, available, group, candidates)
            if units > best[0]:
                best = (units, group)
    return _partial(wanted, available, best[1], order, limit)


def _coverable(wanted: Lines, available: Availability, group: Iterable[str]) -> int:
    group = tuple(group)
    return sum(min(q, sum(available.get((w, sku), 0) for w in group)) for sku, q in wanted.items())


def _full(wanted: Lines, available: Availability, group: tuple[str, ...], candidates: Sequence[Candidate]) -> Route:
    shipments, _ = assign(wanted, available, group)
    if len(group) == 1:
        first = next(c for c in candidates if c.warehouse_id == group[0])
        where = "distance unknown" if first.distance_km is None else f"{round(first.distance_km)} km"
        reason = f"one shipment from {group[0]}: the nearest warehouse that holds every line ({where})"
    else:
        reason = (
            f"split into {len(shipments)} shipments from {', '.join(w for w, _ in shipments)}: no single warehouse"
            " holds every line; fewest warehouses, nearest first"
        )
    return Route(shipments, {}, reason)


def _partial(wanted: Lines, available: Availability, group: tuple[str, ...], order: list[str], limit: int) -> Route:
    shipments, missing = assign(wanted, available, group)
    short = describe(missing)
    capped = limit < len(order) and _coverable(wanted, available, order) > _coverable(wanted, available, group)
    cap = f" (this channel allows at most {limit} shipment{'s' if limit > 1 else ''} per decision)" if capped else ""
    if not shipments:
        return Route((), missing, f"waiting for stock: {short}{cap}")
    sources = ", ".join(w for w, _ in shipments)
    return Route(shipments, missing, f"partial: {sources} ship what is in stock now; waiting for {short}{cap}")


def assign(wanted: Lines, available: Availability, group: Sequence[str]) -> tuple[Shipments, dict[str, int]]:
    """Split each line over the group's warehouses in as few pieces as possible, nearest first.

    Returns the shipments (in the group's order, lines by sku) and the units the group cannot cover."""
    by_warehouse: dict[str, dict[str, int]] = {w: {} for w in group}
    missing: dict[str, int] = {}
    for sku, quantity in sorted(wanted.items()):
        holders = [(w, available.get((w, sku), 0)) for w in group if available.get((w, sku), 0) > 0]
        pieces = fewest_pieces(quantity, holders)
        for warehouse, units in pieces:
            by_warehouse[warehouse][sku] = units
        taken = sum(units for _, units in pieces)
        if taken < quantity:
            missing[sku] = quantity - taken
    shipments = tuple((w, lines) for w, lines in by_warehouse.items() if lines)
    return shipments, missing


def fewest_pieces(quantity: int, holders: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Take `quantity` from as few holders as possible, preferring the earliest (nearest) ones, each
    filled as far as it goes. When all of them together hold too little, take everything they hold."""
    if sum(units for _, units in holders) <= quantity:
        return [(w, units) for w, units in holders if units > 0]
    largest_first = sorted((units for _, units in holders), reverse=True)
    needed = next(n for n in range(1, len(holders) + 1) if sum(largest_first[:n]) >= quantity)
    chosen = next(c for c in combinations(holders, needed) if sum(units for _, units in c) >= quantity)
    pieces = []
    remaining = quantity
    for warehouse, units in chosen:
        take = min(units, remaining)
        pieces.append((warehouse, take))
        remaining -= take
    return pieces


def describe(lines: Lines) -> str:
    return ", ".join(f"{sku} short by {n}" for sku, n in sorted(lines.items()))
