"""Dropship rules: the life of a purchase order (issued, answered, shipped, or timed out), what a supplier's answer
declines, and the dates a purchase order carries. Pure: the caller passes the clock's `now`, the supplier and the
calendar in.

A purchase order's status: `issued` (no answer yet) -> `acknowledged` | `partially_accepted` | `rejected` | `shipped`
| `timed_out` (no answer by `answer_by`); `acknowledged` and `partially_accepted` -> `shipped` | `rejected`; a
whole-order cancellation accepted before it was issued makes it `cancelled`. `rejected`, `timed_out`, `shipped` and
`cancelled` are final: a late answer is recorded and changes nothing, so a line is never both re-routed and shipped
by the supplier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from shared.contracts.backorders import without
from shared.reference.promises import add_business_days
from shared.reference.rates import Calendar
from shared.reference.suppliers import Supplier

from .domain import CLOSED_EMPTY, SHIPPED

ISSUED = "issued"
OPEN = frozenset({ISSUED, "acknowledged", "partially_accepted"})  # the supplier may still ship it
ENDED_EMPTY = frozenset({"rejected", "timed_out", "cancelled"})  # ended without a parcel
Lines = Mapping[str, int]


@dataclass(frozen=True)
class Answer:
    """What a supplier's report does: the purchase order's new status, the units it still holds, and the units
    it declines (for allocation to route elsewhere)."""

    status: str
    held: dict[str, int]
    declined: dict[str, int]


def answer(status: str, kind: str, held: Lines, accepted: Lines | None = None) -> Answer | None:
    """The effect of a supplier's report on a purchase order holding `held`; None when it comes too late to change
    anything (a repeat, or the order was rejected, timed out, shipped or cancelled) and is only recorded."""
    if status not in OPEN or (kind == "acknowledged" and status != ISSUED):
        return None
    match kind:
        case "acknowledged":
            return Answer("acknowledged", dict(held), {})
        case "rejected":
            return Answer("rejected", {}, dict(held))
        case "partially_accepted":
            kept = {sku: n for sku, q in held.items() if (n := min(q, (accepted or {}).get(sku, 0))) > 0}
            return Answer("partially_accepted" if kept else "rejected", kept, without(held, kept))
        case "shipped":
            return Answer("shipped", dict(held), {})
    return None


def timed_out(status: str, answer_by: datetime, now: datetime) -> bool:
    """No answer by the supplier's deadline: the purchase order is off and its lines go elsewhere."""
    return status == ISSUED and now >= answer_by


def ship_by(issued_at: datetime, supplier: Supplier, calendar: Calendar) -> date:
    """The day the supplier must ship by: its lead time in business days after the purchase order."""
    return add_business_days(issued_at.date(), supplier.ship_by_lead_days, calendar)


def as_task_status(status: str) -> str:
    """A purchase order as the pick task it stands in for, when an order's shipments are counted (shipped or not,
    ended empty or not): see services.fulfillment.domain.order_complete."""
    if status == "shipped":
        return SHIPPED
    if status in ENDED_EMPTY:
        return next(iter(sorted(CLOSED_EMPTY)))
    return "released"
