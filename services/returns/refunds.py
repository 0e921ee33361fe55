"""The refund calculator, pure: what a customer gets back for returned units, explained line by line.

- Each SKU's units are worth what was actually paid for them: the lines' prices less their line discounts, less
  the SKU's share of the order discount (spread over the lines in proportion to their value, in cents, the
  remainders to the largest fractions, so the shares add up to the discount exactly).
- Returning k more of a SKU's n units refunds value(returned so far + k) - value(returned so far), where
  value(m) is the SKU's paid amount x m / n rounded to the cent: partial refunds add up to the full refund exactly.
- The restocking fee (per the reason) is taken the same way, on the cumulative value.
- The original shipping is refunded once, when a returned line's reason says so (e.g. wrong item).
- The total is capped at what was captured less what was refunded already, and never below zero.

An order change that lowered the order's total makes an amount due back (capture prices it): refunded as it is, under
the same cap, covering no units (the order's lines after the change no longer hold the units it took away).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PaidLine:
    sku: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = ZERO  # on the whole line


@dataclass(frozen=True)
class PaidOrder:
    lines: tuple[PaidLine, ...]
    shipping: Decimal
    captured: Decimal
    order_discount: Decimal = ZERO

    def paid_per_sku(self) -> dict[str, tuple[int, Decimal]]:
        """Units and the amount actually paid for them, per SKU (line discounts and the order discount's share
        taken off)."""
        nets = [max(ZERO, cents(line.unit_price * line.quantity - line.discount)) for line in self.lines]
        shares = spread(min(cents(self.order_discount), sum(nets, ZERO)), nets)
        found: dict[str, tuple[int, Decimal]] = {}
        for line, net, share in zip(self.lines, nets, shares, strict=True):
            units, paid = found.get(line.sku, (0, ZERO))
            found[line.sku] = (units + line.quantity, paid + net - share)
        return found


def spread(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`amount` in cents over the weights in proportion, largest remainders first; the parts add up to it."""
    total = sum(weights, ZERO)
    if not total or not amount:
        return [ZERO for _ in weights]
    exact = [amount * w / total for w in weights]
    parts = [e.quantize(CENT, rounding="ROUND_DOWN") for e in exact]
    left = int((amount - sum(parts, ZERO)) / CENT)
    for i in sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))[:left]:
        parts[i] += CENT
    return parts


@dataclass(frozen=True)
class ReturnedUnits:
    sku: str
    quantity: int
    reason: str
    refund_shipping: bool = False
    restocking_fee_percent: Decimal = ZERO


@dataclass(frozen=True)
class Refunded:
    """What earlier refunds of the order covered: units per SKU, whether shipping, and the amount."""

    units: Mapping[str, int] = field(default_factory=dict)
    shipping: bool = False
    amount: Decimal = ZERO


@dataclass(frozen=True)
class RefundLine:
    sku: str
    quantity: int
    reason: str
    value: Decimal  # what those units were paid
    fee: Decimal  # restocking fee taken
    amount: Decimal  # value - fee


@dataclass(frozen=True)
class Refund:
    lines: tuple[RefundLine, ...]
    shipping: Decimal
    computed: Decimal  # lines + shipping, before the cap
    total: Decimal  # what is refunded
    explanation: tuple[str, ...]

    @property
    def units(self) -> dict[str, int]:
        return {line.sku: line.quantity for line in self.lines}


def worth_of(paid: Decimal, units: int, returned: int) -> Decimal:
    """What `returned` of `units` units paid `paid` together are worth, to the cent (cumulative, so that the
    refunds of a SKU's units in any number of parts add up to the whole)."""
    return cents(paid * returned / units)


def calculate(order: PaidOrder, returned: Sequence[ReturnedUnits], before: Refunded, currency: str = "") -> Refund:
    paid = order.paid_per_sku()
    lines: list[RefundLine] = []
    explanation: list[str] = []
    unit = f" {currency}" if currency else ""
    for item in returned:
        units, amount = paid.get(item.sku, (0, ZERO))
        done = before.units.get(item.sku, 0)
        take = max(0, min(item.quantity, units - done))
        if not take:
            explanation.append(f"{item.sku}: nothing left to refund ({done} of {units} units refunded before)")
            continue

        before_value, after_value = worth_of(amount, units, done), worth_of(amount, units, done + take)
        worth = after_value - before_value
        percent = item.restocking_fee_percent
        taken = cents(after_value * percent / 100) - cents(before_value * percent / 100)
        lines.append(RefundLine(item.sku, take, item.reason, worth, taken, worth - taken))
        text = f"{item.sku}: {take} of {units} units ({item.reason}), paid {worth}{unit}"
        if taken:
            text += f", less restocking fee {item.restocking_fee_percent}% {taken}{unit}"
        explanation.append(f"{text} = {worth - taken}{unit}")
    shipping = ZERO
    if not before.shipping and any(item.refund_shipping for item in returned) and lines:
        shipping = cents(order.shipping)
        explanation.append(f"shipping refunded ({', '.join(sorted({i.reason for i in returned if i.refund_shipping}))})"
                           f": {shipping}{unit}")  # fmt: skip
    computed = sum((line.amount for line in lines), ZERO) + shipping
    room = max(ZERO, cents(order.captured) - before.amount)
    total = max(ZERO, min(computed, room))
    if total < computed:
        explanation.append(
            f"capped at {room}{unit}: {cents(order.captured)} captured less {before.amount} refunded before"
        )
    explanation.append(f"refund: {total}{unit}")
    return Refund(tuple(lines), shipping, computed, total, tuple(explanation))


def change_refund(change: str, due_back: Decimal, paid: Decimal, before: Refunded, currency: str = "") -> Refund:
    """What goes back for an order change: the amount due back, capped at what was paid less what was refunded."""
    unit = f" {currency}" if currency else ""
    explanation = [f"{change}: {cents(due_back)}{unit} due back"]
    room = max(ZERO, cents(paid) - before.amount)
    total = max(ZERO, min(cents(due_back), room))
    if total < cents(due_back):
        explanation.append(f"capped at {room}{unit}: {cents(paid)} paid less {before.amount} refunded before")
    explanation.append(f"refund: {total}{unit}")
    return Refund((), ZERO, cents(due_back), total, tuple(explanation))
