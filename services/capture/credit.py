"""Credit limits of business accounts: an order bought on an account goes on a credit hold when it would take the
account's exposure over its limit. Exposure is what the account owes or will owe: its open orders (not rejected,
not cancelled, not themselves on a credit hold; an order on another hold keeps its credit) and its shipped ones not
yet paid, each counted at what is still unpaid of its value after cancellations. Held orders are looked at again,
oldest first, whenever the exposure falls (a payment, a cancellation, a shipment that cancelled a short pick); each
one that now fits is released. Pure: the intake and the handlers read the orders and pass them in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.events import SubmittedOrder

from .domain import order_total


class Account(BaseModel):
    """An account's own limit, or the group whose limit it takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: Decimal | None = Field(default=None, ge=0)
    group: str | None = None


class CreditLimits(BaseModel):
    """Per account (its own limit, else its group's), per group, and the group of an account not listed (none:
    such an account has no limit). Limits are in `currency`; an order on a limited account in another currency
    cannot be weighed against it and is held for a person to decide."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    groups: dict[str, Decimal] = {}
    accounts: dict[str, Account] = {}
    default_group: str | None = None

    @model_validator(mode="after")
    def _groups_known(self) -> CreditLimits:
        named = {a.group for a in self.accounts.values() if a.group is not None} | {self.default_group} - {None}
        unknown = sorted(g for g in named if g is not None and g not in self.groups)
        if unknown:
            raise ValueError(f"credit: unknown group(s) {', '.join(unknown)}")
        if any(limit < 0 for limit in self.groups.values()):
            raise ValueError("credit: a group's limit may not be negative")
        return self

    @property
    def limited(self) -> bool:
        """Whether any account has a limit at all (if not, nothing is weighed)."""
        return bool(self.accounts) or self.default_group is not None

    def limit_of(self, account: str) -> Decimal | None:
        listed = self.accounts.get(account)
        if listed is not None and listed.limit is not None:
            return listed.limit
        group = listed.group if listed is not None and listed.group is not None else self.default_group
        return None if group is None else self.groups[group]


@dataclass(frozen=True)
class OpenOrder:
    """What exposure needs of an order: its lines' prices, the units cancelled per SKU, and what was paid."""

    order_id: UUID
    order: SubmittedOrder
    cancelled: Mapping[str, int]
    paid: Decimal


def unpaid(order: SubmittedOrder, cancelled: Mapping[str, int], paid: Decimal) -> Decimal:
    """The order's value after cancellations (each SKU's cancelled units at the price its lines were sold at, the
    dearest first; the shipping price too once everything is cancelled) less what was paid, never below nothing."""
    value = order_total(order)
    left = dict(cancelled)
    for line in sorted(order.lines, key=lambda line: line.unit_price, reverse=True):
        taken = min(line.quantity, left.get(line.sku, 0))
        if taken:
            left[line.sku] -= taken
            value -= line.unit_price * taken
    if sum(cancelled.values()) >= sum(line.quantity for line in order.lines) > 0:
        value -= order.shipping_price
    return max(value - paid, Decimal(0))


def paid_at_intake(order: SubmittedOrder) -> Decimal:
    """What the channel says was already taken when the order came (an order paid up front owes nothing)."""
    return order.payment.amount if order.payment.status == "paid" else Decimal(0)


def exposure(orders: Iterable[OpenOrder]) -> Decimal:
    return sum((unpaid(o.order, o.cancelled, o.paid) for o in orders), Decimal(0))


def over_limit(
    limits: CreditLimits, account: str, order: SubmittedOrder, amount: Decimal, exposure: Decimal
) -> str | None:
    """Why an order of `amount` unpaid on this account goes on credit hold, or None when it fits (or the account has
    no limit). The reason names amounts of the account, never the customer."""
    limit = limits.limit_of(account)
    if limit is None or amount == 0:
        return None
    if order.currency != limits.currency:
        return f"the account's credit limit is in {limits.currency}, the order in {order.currency}"
    if exposure + amount > limit:
        return (
            f"{_money(amount)} {order.currency} would take the account's exposure from {_money(exposure)} to"
            f" {_money(exposure + amount)}, over its credit limit of {limit}"
        )
    return None


def _money(amount: Decimal) -> str:
    """Cents, unless the amount has finer parts (the stored amounts carry four decimals)."""
    cents = amount.quantize(Decimal("0.01"))
    return str(cents if cents == amount else amount.normalize())


@dataclass(frozen=True)
class Review:
    released: tuple[UUID, ...]
    exposure: Decimal


def review(limits: CreditLimits, account: str, held: Sequence[OpenOrder], exposure: Decimal) -> Review:
    """The orders on credit hold (oldest first) that now fit under the limit: each that fits is released and counts
    from then on; one that does not fit waits and does not stop a smaller later one."""
    released: list[UUID] = []
    for candidate in held:
        amount = unpaid(candidate.order, candidate.cancelled, candidate.paid)
        if over_limit(limits, account, candidate.order, amount, exposure) is None:
            released.append(candidate.order_id)
            exposure += amount
    return Review(tuple(released), exposure)
