"""What of an order still waits for stock, as allocation's events tell it. Capture (partially shipped or
shipped?) and notifications (which message?) both follow it, so the rule lives here once. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from shared.contracts import events as ev

Quantities = dict[str, int]


class Units(Protocol):
    """An order line or an item quantity: some units of one SKU."""

    @property
    def sku(self) -> str: ...

    @property
    def quantity(self) -> int: ...


def quantities(items: Iterable[Units]) -> Quantities:
    """Units per SKU, repeated SKUs added up."""
    totals: Quantities = {}
    for item in items:
        totals[item.sku] = totals.get(item.sku, 0) + item.quantity
    return totals


def without(current: Mapping[str, int], taken: Mapping[str, int]) -> Quantities:
    """`current` less `taken`, never below zero; SKUs that reach zero disappear."""
    left = {sku: quantity - taken.get(sku, 0) for sku, quantity in current.items()}
    return {sku: quantity for sku, quantity in left.items() if quantity > 0}


def backordered_after(current: Mapping[str, int], payload: ev.Contract) -> Quantities | None:
    """The backordered units after an allocation event; None when the event says nothing about them.

    The last OrderAllocated / OrderBackordered / OrderChanged lists everything still waiting; a cancellation releases
    the backordered units of the lines it cancels (all of them when it cancels the whole order)."""
    match payload:
        case (
            ev.OrderAllocated(backordered=waiting)
            | ev.OrderBackordered(missing=waiting)
            | ev.OrderChanged(backordered=waiting)
        ):
            return quantities(waiting)
        case ev.OrderCancelled(lines=None):
            return {}
        case ev.OrderCancelled(lines=lines) if lines is not None:
            return without(current, quantities(lines))
    return None


def describe(items: Mapping[str, int]) -> str:
    """`SKU-1 x2, SKU-2 x1`: for timelines and messages (SKUs are not personal data)."""
    return ", ".join(f"{sku} x{quantity}" for sku, quantity in items.items())
