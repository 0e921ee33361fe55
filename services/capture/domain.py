"""Order intake rules: what makes a submitted order valid, and the table of the status changes an order
may make. Pure: no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.contracts.backorders import quantities
from shared.contracts.events import MAX_UNITS_PER_SKU, ItemQuantity, SubmittedOrder

ACCEPTED_PAYMENT = ("authorized", "paid")

STATUSES = (
    "received",
    "on_hold",
    "validated",
    "rejected",
    "backordered",
    "allocated",
    "partially_shipped",
    "shipped",
    "delivered",
    "cancelled",
    "exception",
)
# The only status changes an order may make. Allocation may still refuse an order nothing was reserved
# for (validated, backordered), not one it has routed; an order that has shipped in part cannot be
# cancelled as a whole nor go back to waiting; a delivery exception is cleared only by the delivery itself. An order
# on hold was never announced to allocation: it is validated when its last hold is released, or cancelled from hold.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "received": frozenset({"validated", "rejected", "on_hold"}),
    "on_hold": frozenset({"validated", "cancelled"}),
    "validated": frozenset({"allocated", "backordered", "rejected", "cancelled"}),
    "backordered": frozenset({"allocated", "partially_shipped", "rejected", "cancelled"}),
    "allocated": frozenset({"backordered", "partially_shipped", "shipped", "cancelled"}),
    "partially_shipped": frozenset({"shipped", "exception"}),
    "shipped": frozenset({"delivered", "exception"}),
    "exception": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
}
FINAL_STATUSES = frozenset(status for status, following in TRANSITIONS.items() if not following)


def _reachable(start: str) -> frozenset[str]:
    seen: set[str] = set()
    todo = list(TRANSITIONS[start])
    while todo:
        status = todo.pop()
        if status not in seen:
            seen.add(status)
            todo.extend(TRANSITIONS[status])
    return frozenset(seen)


REACHABLE = {status: _reachable(status) for status in STATUSES}
REPORTED_BY_FULFILLMENT = frozenset({"partially_shipped", "shipped", "exception", "delivered"})


def allowed(current: str, following: str) -> bool:
    return following in TRANSITIONS[current]


@dataclass(frozen=True)
class IntakeRules:
    shippable_countries: frozenset[str]
    currencies: frozenset[str]
    max_lines: int = 100
    max_quantity: int = MAX_UNITS_PER_SKU  # per line, and per SKU over its lines


def order_total(order: SubmittedOrder) -> Decimal:
    return sum((line.unit_price * line.quantity for line in order.lines), Decimal(0)) + order.shipping_price


class Rejection(str):
    """Why an order is refused: the text customers and operators read, and its kind, a bounded code (for
    metrics) that does not depend on the wording."""

    kind: str

    def __new__(cls, kind: str, text: str) -> Rejection:
        reason = super().__new__(cls, text)
        reason.kind = kind
        return reason


def rejection_reasons(order: SubmittedOrder, catalogue: Mapping[str, bool], rules: IntakeRules) -> list[Rejection]:
    """Why the order cannot be accepted; empty when it can. `catalogue` maps known SKUs to whether they are active."""
    reasons: list[Rejection] = []
    if not order.lines:
        reasons.append(Rejection("no_lines", "the order has no lines"))
    if len(order.lines) > rules.max_lines:
        reasons.append(Rejection("too_many_lines", f"too many lines: {len(order.lines)}, at most {rules.max_lines}"))
    for number, line in enumerate(order.lines, start=1):
        if not 1 <= line.quantity <= rules.max_quantity:
            text = f"line {number}: quantity {line.quantity} outside 1..{rules.max_quantity}"
            reasons.append(Rejection("quantity", text))
        if line.sku not in catalogue:
            reasons.append(Rejection("unknown_sku", f"line {number}: unknown SKU {line.sku}"))
        elif not catalogue[line.sku]:
            reasons.append(Rejection("not_sold", f"line {number}: SKU {line.sku} is not sold any more"))
    reasons += _over_the_quantity_rule_together(order, rules)
    if order.currency not in rules.currencies:
        reasons.append(Rejection("currency", f"currency {order.currency} is not accepted"))
    if order.payment.currency is not None and order.payment.currency != order.currency:
        text = f"payment currency {order.payment.currency} differs from order currency {order.currency}"
        reasons.append(Rejection("currency", text))
    # An order bought on a business account may come unpaid: it is invoiced, and weighed against the account's credit.
    on_terms = order.customer.account is not None and order.payment.status == "pending"
    if order.payment.status not in ACCEPTED_PAYMENT and not on_terms:
        reasons.append(Rejection("payment", f"payment is {order.payment.status}, must be authorized or paid"))
    total = order_total(order)
    if order.payment.amount < total:
        reasons.append(Rejection("payment", f"payment {order.payment.amount} is less than the order total {total}"))
    if order.shipping_address.country not in rules.shippable_countries:
        reasons.append(Rejection("ship_to", f"we do not ship to {order.shipping_address.country}"))
    return reasons


def _over_the_quantity_rule_together(order: SubmittedOrder, rules: IntakeRules) -> list[Rejection]:
    """A SKU is reserved as one item, so the quantity rule holds for its lines added up too (each line
    may be within it)."""
    lines_per_sku = Counter(line.sku for line in order.lines)
    return [
        Rejection(
            "quantity",
            f"SKU {sku}: quantity {quantity} over its {lines_per_sku[sku]} lines outside 1..{rules.max_quantity}",
        )
        for sku, quantity in quantities(order.lines).items()
        if lines_per_sku[sku] > 1 and quantity > rules.max_quantity
    ]


def items_to_reserve(order: SubmittedOrder) -> list[ItemQuantity]:
    """The order's lines per SKU, quantities of repeated SKUs added up, in the order first seen."""
    return [ItemQuantity(sku=sku, quantity=quantity) for sku, quantity in quantities(order.lines).items()]


def advance(current: str, reported: str) -> str:
    """The status after an event that reports `reported`: the reported one when the table allows the change,
    else the current one (a late event, anything after a final status). It never moves backwards.

    Fulfillment's events travel on another topic than allocation's, so a shipment or delivery may be read
    before the allocation event it follows: such a report moves the order on along the table, past the
    step whose event is still on its way (validated -> shipped); that step is recorded when it arrives."""
    if allowed(current, reported) or (reported in REPORTED_BY_FULFILLMENT and reported in REACHABLE[current]):
        return reported
    return current
