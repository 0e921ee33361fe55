"""Whether an order change may withdraw the pick tasks it touches: every open task when the ship-to or service level
changes, those holding fewer units otherwise. Allowed only while none of them has been picked (a picked task is the
warehouse's work under way); packed tasks have left and are not touched. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .domain import OPEN, Refuse, TaskState, Withdraw


def decide_change(tasks: Iterable[TaskState], reroute: bool, reduced: Mapping[str, int]) -> Withdraw | Refuse:
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
