"""An order change applied to the allocation aggregate in one step: the shipments fulfillment withdrew are released
and what the order needs from now on is routed again, in the same operation, over the same ledger (so no unit is
counted twice or lost, and the oversell guards hold), from the warehouse nearest the new ship-to. Units added that
no warehouse has wait for stock, or, for an order whose policy is not to wait, are refused.

A change is applied once per version; a later report of the same or an older version only releases the shipments
fulfillment withdrew since (reserved under the older version) and routes their units again. Pure and in memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from .inventory import Inventory
from .ledger import Reservation
from .orders import Order, Outcome
from .routing import Lines


@dataclass(frozen=True)
class Changed:
    """The change is applied: the order's version, the units it holds from now on, what waits, what was refused."""

    order_id: UUID
    change_id: str
    version: int
    lines: dict[str, int]
    backordered: dict[str, int]
    refused: dict[str, int]
    reason: str


@dataclass(frozen=True)
class Change:
    order_id: UUID
    change_id: str
    version: int
    ship_to: Mapping[str, Any]
    service_level: str
    lines: Lines  # units still to come per SKU from now on
    withdrawn: frozenset[UUID]
    reason: str


def apply_change(inventory: Inventory, change: Change) -> list[Outcome | Changed]:
    order = inventory.orders[change.order_id]
    held = inventory.ledger.open_reservations(order_id=order.order_id)
    released = [r for r in held if r.shipment_id in change.withdrawn]
    if order.status in ("cancelled", "unfulfillable"):
        return list(_release_for_a_closed_order(inventory, order, released))
    still_to_come = _add(order.backordered, _units(held))
    for r in released:
        inventory.ledger.release(r)
    kept = _units([r for r in held if r.shipment_id not in change.withdrawn])
    inventory.touched_orders.add(order.order_id)
    if change.version <= order.version:  # applied before: only the shipments withdrawn since go round again
        if not released:
            return []
        needed = _add(order.backordered, _units(released))
        return list(_route(inventory, order, needed, {r.sku for r in released}, "re-allocated after the change: "))
    wanted = dict(change.lines)
    refused = _refused(inventory, order, wanted, still_to_come, kept)
    wanted = {sku: n - refused.get(sku, 0) for sku, n in wanted.items() if n > refused.get(sku, 0)}
    for sku in set(wanted) | set(still_to_come):
        order.lines[sku] = order.lines.get(sku, 0) + wanted.get(sku, 0) - still_to_come.get(sku, 0)
        if order.lines[sku] <= 0:
            del order.lines[sku]
    order.ship_to, order.service_level, order.version = dict(change.ship_to), change.service_level, change.version
    # Units a crossed shipment holds beyond the change stay reserved until fulfillment withdraws that shipment (it
    # was reserved under the older version): nothing more is routed for them meanwhile.
    needed = {sku: n - kept.get(sku, 0) for sku, n in wanted.items() if n > kept.get(sku, 0)}
    context = f"order changed (version {change.version}): "
    outcomes: list[Outcome | Changed] = list(
        _route(inventory, order, needed, {r.sku for r in released} | set(still_to_come), context)
    )
    outcomes.append(
        Changed(
            order.order_id, change.change_id, change.version, wanted, dict(order.backordered), refused, change.reason
        )
    )
    return outcomes


def _route(inventory: Inventory, order: Order, needed: dict[str, int], freed: set[str], context: str) -> list[Outcome]:
    """Route what the order needs (as the focus of one serving decision, so orders waiting ahead of it keep their
    turn) and serve the freed stock to whoever waits for it."""
    order.backordered = {sku: n for sku, n in needed.items() if n > 0}
    if order.backordered:
        order.status = "backordered"
        return inventory.serving.serve(freed, focus=order, context=context)
    order.status = "allocated"
    return inventory.serving.serve(freed)


def _refused(inventory: Inventory, order: Order, wanted: Lines, before: Lines, kept: Lines) -> dict[str, int]:
    """Units added that no warehouse can promise now, for an order that does not wait for stock."""
    if order.policy != "reject":
        return {}
    refused = {}
    for sku, n in wanted.items():
        added = n - before.get(sku, 0)
        if added <= 0:
            continue
        available = sum(inventory.ledger.available(w, sku) for w in inventory.ledger.warehouse_ids)
        short = n - kept.get(sku, 0) - available
        if short > 0:
            refused[sku] = min(added, short)
    return refused


def _release_for_a_closed_order(inventory: Inventory, order: Order, released: list[Reservation]) -> list[Outcome]:
    """The order was cancelled meanwhile: what fulfillment withdrew counts as cancelled, and its stock is served."""
    for r in released:
        inventory.ledger.release(r)
        order.cancelled[r.sku] = order.cancelled.get(r.sku, 0) + r.units
    if not released:
        return []
    inventory.touched_orders.add(order.order_id)
    return inventory.serving.serve({r.sku for r in released})


def _units(reservations: list[Reservation]) -> dict[str, int]:
    units: dict[str, int] = {}
    for r in reservations:
        units[r.sku] = units.get(r.sku, 0) + r.units
    return units


def _add(a: Lines, b: Lines) -> dict[str, int]:
    return {sku: a.get(sku, 0) + b.get(sku, 0) for sku in {*a, *b} if a.get(sku, 0) + b.get(sku, 0) > 0}
