"""Whether an order change may go on, and what the order becomes: refused (409) once the order is past changing or
another change of it is under way; invalid (422) when it does not fit the order or the order after it would not pass
intake (SKUs, limits, shippable country); partly allowed when parcels have left already (the change applies to what
has not). Priced like intake: what more must be paid before it goes on, or what is due back. Pure: no I/O.

A changed line's quantity is the units still to come from now on (neither cancelled nor shipped)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from shared.contracts.backorders import Quantities, describe, quantities, without
from shared.contracts.events import OrderChange, SubmittedLine, SubmittedOrder

from .domain import IntakeRules, Rejection, order_total, rejection_reasons
from .lifecycle import Progress

REFUSALS = {
    # Until allocation has answered, it may not have the order yet: a change must not overtake it.
    "validated": "the order is still being allocated: try again in a moment",
    "on_hold": "the order is on hold: release it first",
    "shipped": "the order has shipped and can no longer be changed",
    "exception": "the order has shipped (it is with the carrier) and can no longer be changed",
    "delivered": "the order was delivered and can no longer be changed",
    "cancelled": "the order is cancelled",
    "rejected": "the order was rejected; there is nothing to change",
}
# What a change re-checks of intake: not the payment, which the change prices itself.
REVALIDATED = frozenset({"no_lines", "too_many_lines", "quantity", "unknown_sku", "not_sold", "ship_to"})


@dataclass(frozen=True)
class Plan:
    """`allowed` / `partly`: the order after the change (`after`), the units still to come per SKU (`lines`), the
    units fewer than before (`reduced`), whether the ship-to or service level changes (`reroute`), and the money."""

    verdict: Literal["allowed", "partly", "refused", "invalid"]
    reasons: tuple[str, ...] = ()
    after: SubmittedOrder | None = None
    lines: Quantities = field(default_factory=dict)
    reduced: Quantities = field(default_factory=dict)
    reroute: bool = False
    total_before: Decimal = Decimal(0)
    total_after: Decimal = Decimal(0)
    to_pay: Decimal = Decimal(0)
    due_back: Decimal = Decimal(0)

    @property
    def goes_on(self) -> bool:
        return self.verdict in ("allowed", "partly")


def plan(
    progress: Progress,
    order: SubmittedOrder,
    change: OrderChange,
    catalogue: Mapping[str, bool],
    rules: IntakeRules,
    paid: Decimal,
) -> Plan:
    """The change decided against the order as it stands (`order` its document, `paid` what was paid for it)."""
    if refusal := REFUSALS.get(progress.status):
        return Plan("refused", (refusal,))
    problems = _line_problems(order, change)
    if problems:
        return Plan("invalid", tuple(problems))
    after = _changed(order, progress, change)
    # SKUs the order had keep their standing: a product no longer sold does not block an address change.
    kept = {line.sku: True for line in order.lines if line.sku not in _named(change)}
    reasons = [r for r in rejection_reasons(after, {**catalogue, **kept}, rules) if r.kind in REVALIDATED]
    still_to_come = _still_to_come(after, progress)
    if not still_to_come:
        reasons.append(Rejection("nothing_left", "the change leaves nothing to send: cancel the order instead"))
    if reasons:
        return Plan("invalid", tuple(str(r) for r in reasons))
    before = progress.open
    reroute = after.shipping_address != order.shipping_address or after.service_level != order.service_level
    if not reroute and still_to_come == before:
        return Plan("invalid", ("the change changes nothing",))
    total_before, total_after = order_total(order), order_total(after)
    to_pay = min(total_after - total_before, max(Decimal(0), total_after - paid)) if total_after > total_before else 0
    due_back = max(Decimal(0), min(paid, total_before) - total_after)
    notes: tuple[str, ...] = ()
    if progress.shipped and reroute:
        notes = (f"{describe(progress.shipped)} shipped already: the change applies to what has not",)
    return Plan(
        "partly" if notes else "allowed",
        notes,
        after,
        still_to_come,
        {sku: n - still_to_come.get(sku, 0) for sku, n in before.items() if n > still_to_come.get(sku, 0)},
        reroute,
        total_before,
        total_after,
        Decimal(to_pay),
        due_back,
    )


def _named(change: OrderChange) -> set[str]:
    return {line.sku for line in change.lines or []}


def _line_problems(order: SubmittedOrder, change: OrderChange) -> list[str]:
    if change.shipping_address is None and change.service_level is None and change.lines is None:
        return ["the change names nothing to change: shipping_address, service_level or lines"]
    prices = {line.sku: line.unit_price for line in order.lines}
    problems = []
    seen: set[str] = set()
    for line in change.lines or []:
        if line.sku in seen:
            problems.append(f"{line.sku}: named twice")
        seen.add(line.sku)
        if line.sku not in prices and line.unit_price is None:
            problems.append(f"{line.sku}: a line added needs its unit_price")
        elif line.sku in prices and line.unit_price is not None and line.unit_price != prices[line.sku]:
            problems.append(f"{line.sku}: sold at {prices[line.sku]} in this order; a change does not reprice a line")
    return problems


def _changed(order: SubmittedOrder, progress: Progress, change: OrderChange) -> SubmittedOrder:
    """The order's document after the change: a changed SKU becomes one line of the units still to come plus those
    cancelled or shipped already (its total is what the customer pays for)."""
    named = {line.sku: line for line in change.lines or []}
    lines = [line for line in order.lines if line.sku not in named]
    prices = {line.sku: line.unit_price for line in order.lines}
    for sku, wanted in named.items():
        done = progress.cancelled.get(sku, 0) + progress.shipped.get(sku, 0)
        if wanted.quantity + done:
            price = wanted.unit_price if wanted.unit_price is not None else prices[sku]
            lines.append(SubmittedLine(sku=sku, quantity=wanted.quantity + done, unit_price=price))
    return order.model_copy(
        update={
            "shipping_address": change.shipping_address or order.shipping_address,
            "service_level": change.service_level or order.service_level,
            "lines": lines,
        }
    )


def _still_to_come(after: SubmittedOrder, progress: Progress) -> Quantities:
    return without(without(quantities(after.lines), progress.cancelled), progress.shipped)


def fingerprint(change: OrderChange) -> str:
    """Identifies what a change asks, so that a repeat of its change id is told apart from another change."""
    return hashlib.sha256(change.model_dump_json(exclude={"reason"}).encode()).hexdigest()
