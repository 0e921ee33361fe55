"""Whether an order change may withdraw the pick tasks it touches: every open task when the ship-to or service level
changes, those holding fewer units otherwise. Allowed only while none of them has been picked (a picked task is the
warehouse's work under way); packed tasks have left and are not touched. An order with a purchase order out to a
dropship supplier is not changed at all: a change re-routes every unit still to come to warehouses, and the
supplier's lines would be ordered twice. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from .domain import OPEN, Refuse, TaskState, Withdraw

# A purchase order in these states is with its supplier (or done by it): its lines are the supplier's.
WITH_SUPPLIER = frozenset({"issued", "acknowledged", "partially_accepted", "shipped"})


def decide_change(
    tasks: Iterable[TaskState],
    reroute: bool,
    reduced: Mapping[str, int],
    purchase_orders: Collection[str] = (),
) -> Withdraw | Refuse:
    """`purchase_orders`: the statuses of the order's dropship purchase orders."""
    if WITH_SUPPLIER & set(purchase_orders):
        return Refuse("part of the order is with a dropship supplier: it cannot be changed")
    touched = [
        t
        for t in sorted(tasks, key=lambda t: str(t.pick_task_id))
        if t.status in OPEN and (reroute or any(line.sku in reduced for line in t.lines))
    ]
    started = [t for t in touched if t.status != "released"]
    if started:
        which = ", ".join(f"{t.pick_task_id} at {t.warehouse_id} ({t.status})" for t in started)
        return Refuse(f"the warehouse has started on it: shipment {which}")
    return Withdraw(tuple(touched))
