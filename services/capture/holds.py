"""Holds on an order: typed and stackable (fraud, credit, address, payment). An order on hold is not announced to
allocation; releasing its last hold lets it flow, and cancelling it from hold releases nothing (nothing was
reserved). A hold older than its type's time limit cancels the order. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.contracts.events import HoldType

from .risk import Assessment

PLACED_BY_RISK = "risk assessment"
PLACED_BY_CREDIT = "credit check"


def placed_by(hold: HoldType) -> str:
    return PLACED_BY_CREDIT if hold == "credit" else PLACED_BY_RISK


@dataclass(frozen=True)
class Release:
    """What releasing `asked` (None: every hold) does: the holds released, those asked that the order does not have,
    and those left on it."""

    released: tuple[HoldType, ...]
    not_held: tuple[str, ...]
    remaining: tuple[HoldType, ...]

    @property
    def order_flows(self) -> bool:
        return bool(self.released) and not self.remaining and not self.not_held


def release(held: Collection[HoldType], asked: Iterable[str] | None) -> Release:
    wanted = set(held) if asked is None else set(asked)
    return Release(
        released=tuple(sorted(h for h in held if h in wanted)),
        not_held=tuple(sorted(wanted.difference(held))),
        remaining=tuple(sorted(h for h in held if h not in wanted)),
    )


def placed(assessment: Assessment | None) -> dict[HoldType, str]:
    """The holds an order goes on at intake, with their reasons: none unless the assessment says investigate or
    cancel."""
    return {} if assessment is None else assessment.holds


def describe(holds: Mapping[HoldType, str]) -> str:
    return "; ".join(f"{hold} hold: {reason}" for hold, reason in sorted(holds.items()))


def overdue_since(limits: Mapping[HoldType, timedelta], at: datetime) -> dict[HoldType, datetime]:
    """Per hold type, the moment a hold must have been placed before to be past its time limit at `at`."""
    return {hold: at - limit for hold, limit in limits.items()}


def expiry_reason(limits: Mapping[HoldType, timedelta], held: Iterable[HoldType]) -> str:
    """What the customer is told: the checks the order needed were not completed in time (never which ones)."""
    hours = min(limits[h] for h in held) / timedelta(hours=1)
    return f"the checks your order needs could not be completed within {hours:g} hours"
