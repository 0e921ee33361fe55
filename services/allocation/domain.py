"""Routing and reservation rules. Pure: decisions from the stock a caller has locked, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.warehouses import Warehouse

# Available to promise per (warehouse id, sku): on hand minus reserved.
Availability = Mapping[tuple[str, str], int]


@dataclass(frozen=True)
class Reserve:
    warehouse_id: str
    lines: Mapping[str, int]


@dataclass(frozen=True)
class Backorder:
    reason: str
    missing: Mapping[str, int]


def can_ship_all(warehouse_id: str, lines: Mapping[str, int], available: Availability) -> bool:
    return all(available.get((warehouse_id, sku), 0) >= quantity for sku, quantity in lines.items())


def route(
    lines: Mapping[str, int], available: Availability, warehouses: Sequence[Warehouse], country: str
) -> Reserve | Backorder:
    """The whole order from one warehouse that holds every line: one in the destination country first,
    then by configured priority. Otherwise a backorder naming what no warehouse can cover."""
    candidates = sorted(warehouses, key=lambda w: (w.country != country, w.priority, w.id))
    for warehouse in candidates:
        if can_ship_all(warehouse.id, lines, available):
            return Reserve(warehouse.id, dict(lines))
    best = {sku: max((available.get((w.id, sku), 0) for w in warehouses), default=0) for sku in lines}
    missing = {sku: quantity - best[sku] for sku, quantity in lines.items() if best[sku] < quantity}
    if missing:
        short = ", ".join(f"{sku} short by {n}" for sku, n in sorted(missing.items()))
        return Backorder(f"waiting for stock: {short}", missing)
    return Backorder("waiting for stock: no single warehouse holds every line", {})


def count_reconciliation(counted: int, reserved: int) -> tuple[int, int]:
    """On hand after a stock count, and the units the count is short of what is already reserved.

    On hand never drops below reserved (the database forbids it); a shortfall is reported, not hidden."""
    return max(counted, reserved), max(0, reserved - counted)
