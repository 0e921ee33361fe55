"""Whether a cancel request may go on to fulfillment: refused once the order is past cancelling, invalid
when it names lines the order does not have or more units than are left. Pure: no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from shared.contracts.backorders import quantities, without
from shared.contracts.events import ItemQuantity

from .lifecycle import Progress

REFUSALS = {
    "shipped": "the order has shipped and can no longer be cancelled",
    "exception": "the order has shipped (it is with the carrier) and can no longer be cancelled",
    "delivered": "the order was delivered and can no longer be cancelled",
    "cancelled": "the order is already cancelled",
    "rejected": "the order was rejected; there is nothing to cancel",
}


@dataclass(frozen=True)
class Review:
    verdict: Literal["accepted", "refused", "invalid"]
    reasons: tuple[str, ...] = ()


def review(progress: Progress, lines: list[ItemQuantity] | None) -> Review:
    """`refused`: the order's state forbids it (409); `invalid`: the request does not fit the order (422)."""
    if refusal := REFUSALS.get(progress.status):
        return Review("refused", (refusal,))
    if progress.status == "on_hold" and lines is not None:
        return Review("refused", ("the order is on hold: cancel it whole, or release it first",))
    if lines is None:
        if progress.shipped:
            return Review("refused", ("part of the order has shipped; name the lines still to cancel",))
        return Review("accepted")
    asked = quantities(lines)
    left = without(progress.ordered, progress.cancelled)
    invalid = [problem for sku, n in asked.items() if (problem := _line_problem(progress, left, sku, n))]
    if invalid:
        return Review("invalid", tuple(invalid))
    shipped = [
        f"{sku}: {progress.shipped[sku]} of {progress.ordered[sku]} have shipped"
        for sku, n in asked.items()
        if n > progress.open.get(sku, 0)
    ]
    return Review("refused", tuple(shipped)) if shipped else Review("accepted")


def _line_problem(progress: Progress, left: dict[str, int], sku: str, asked: int) -> str | None:
    ordered = progress.ordered.get(sku, 0)
    if not ordered:
        return f"{sku}: not in this order"
    if asked > ordered:
        return f"{sku}: cancel {asked}, only {ordered} ordered"
    if asked > left.get(sku, 0):
        return (
            f"{sku}: cancel {asked}, only {left.get(sku, 0)} left ({progress.cancelled.get(sku, 0)} already cancelled)"
        )
    return None


def fingerprint(lines: list[ItemQuantity] | None) -> str:
    """Identifies a request by what it cancels, so that a repeat of the same request is recognised."""
    if lines is None:
        return "whole-order"
    canonical = ";".join(f"{sku}={n}" for sku, n in sorted(quantities(lines).items()))
    return "lines:" + hashlib.sha256(canonical.encode()).hexdigest()
