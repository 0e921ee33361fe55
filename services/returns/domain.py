"""The rules of a return, pure: whether a request is authorised, rejected (with every reason) or left to an
operator; which warehouse takes the parcel back and the cheapest label there; how a warehouse's receipt is
matched against the RMA; when an unfinished RMA closes. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from shared.contracts import events as ev
from shared.reference.rates import ShippingRules

from .policy import ReturnsPolicy

Status = Literal["authorised", "review", "rejected", "partially_received", "received", "closed"]
# Each a Status (the type checker holds them to it).
AUTHORISED: Status = "authorised"
REVIEW: Status = "review"
REJECTED: Status = "rejected"
PARTIALLY_RECEIVED: Status = "partially_received"
RECEIVED: Status = "received"
CLOSED: Status = "closed"
# Returns whose units count as asked for (a closed one: what it received).
OPEN = (AUTHORISED, REVIEW, PARTIALLY_RECEIVED, RECEIVED)


@dataclass(frozen=True)
class Product:
    category: str | None = None
    weight_grams: int = 0


@dataclass(frozen=True)
class OrderFacts:
    """What returns knows of an order: its channel and destination, when it arrived, and per SKU the units
    shipped (by warehouse) and those asked back already by earlier returns that were not refused; the SKUs the order
    holds, as its changes left them, and their units when returns knows them (orders announced with their prices)."""

    channel: str
    country: str
    delivered_at: datetime | None
    shipped: Mapping[str, Mapping[str, int]]  # sku -> warehouse -> units
    requested: Mapping[str, int] = field(default_factory=dict)
    ordered: frozenset[str] = frozenset()
    units: Mapping[str, int] = field(default_factory=dict)  # sku -> units in the order (empty: not known)

    def shipped_units(self, sku: str) -> int:
        return sum(self.shipped.get(sku, {}).values())


@dataclass(frozen=True)
class Request:
    """What a customer asks back, however it came in (the order's API or a channel's topic)."""

    lines: tuple[ev.ReturnLine, ...]
    note: str | None = None
    resolution: ev.Resolution = "refund"
    exchange_for: tuple[ev.PricedLine, ...] = ()


@dataclass(frozen=True)
class Decision:
    outcome: str  # authorised | review | rejected
    reasons: tuple[str, ...] = ()


def problems(request: Request, facts: OrderFacts, policy: ReturnsPolicy) -> list[str]:
    """What makes a request malformed for this order (422, nothing recorded): unknown reason codes, SKUs the
    order does not hold, a SKU named twice, an exchange without what to exchange for (or the reverse)."""
    lines = request.lines
    codes = policy.leaves()
    found: list[str] = []
    if request.resolution == "exchange" and not any(line.quantity for line in request.exchange_for):
        found.append("exchange_for: an exchange names what the customer gets instead")
    if request.resolution != "exchange" and request.exchange_for:
        found.append(f"exchange_for: only for an exchange, not a {request.resolution}")
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if line.reason not in codes:
            found.append(f"line {n}: unknown reason code {line.reason} (known: {', '.join(sorted(codes))})")
        if line.sku not in facts.ordered and line.sku not in facts.shipped:
            found.append(f"line {n}: SKU {line.sku} is not in the order")
        if line.sku in seen:
            found.append(f"line {n}: SKU {line.sku} is named twice")
        seen.add(line.sku)
    return found


def decide(
    lines: Sequence[ev.ReturnLine],
    facts: OrderFacts,
    products: Mapping[str, Product],
    policy: ReturnsPolicy,
    now: datetime,
) -> Decision:
    """Eligibility, every reason given: within the window from delivery (per channel and category), only units
    shipped, still in the order (a change may have reduced it) and not asked back already, nothing non-returnable. A
    request that passes goes to an operator when its reasons or size say so."""
    if facts.delivered_at is None:
        return Decision(REJECTED, ("the order has not been delivered yet",))
    rejected: list[str] = []
    codes = policy.leaves()
    for line in lines:
        product = products.get(line.sku, Product())
        days = policy.window_days(facts.channel, product.category)
        if now > facts.delivered_at + timedelta(days=days):
            rejected.append(
                f"{line.sku}: the return window of {days} days from delivery on"
                f" {facts.delivered_at.date().isoformat()} has passed"
            )
        if line.sku in policy.non_returnable.skus or product.category in policy.non_returnable.categories:
            rejected.append(f"{line.sku}: not returnable" + (f" ({product.category})" if product.category else ""))
        shipped, asked = facts.shipped_units(line.sku), facts.requested.get(line.sku, 0)
        held = min(shipped, facts.units.get(line.sku, shipped))
        if line.quantity > held - asked:
            in_order = f", {held} in the order" if held < shipped else ""
            rejected.append(
                f"{line.sku}: {line.quantity} asked back, {max(0, held - asked)} returnable"
                f" ({shipped} shipped{in_order}, {asked} already asked back)"
            )
    if rejected:
        return Decision(REJECTED, tuple(rejected))
    review = [
        f"{line.sku}: reason {line.reason} is checked by an operator" for line in lines if codes[line.reason].review
    ]
    units = sum(line.quantity for line in lines)
    if units > policy.review_above_units:
        review.append(f"{units} units asked back, over {policy.review_above_units}")
    return Decision(REVIEW, tuple(review)) if review else Decision(AUTHORISED)


def receiving_warehouse(
    lines: Sequence[ev.ReturnLine], facts: OrderFacts, countries: Mapping[str, str], policy: ReturnsPolicy
) -> str:
    """Where the parcel goes back: by default the warehouse that shipped most of its units (ties: by id); by
    policy `nearest`, a warehouse in the customer's country when there is one."""
    if policy.receiving_warehouse == "nearest":
        local = sorted(w for w, country in countries.items() if country == facts.country)
        if local:
            return local[0]
    units: dict[str, int] = {}
    for line in lines:
        for warehouse, shipped in facts.shipped.get(line.sku, {}).items():
            units[warehouse] = units.get(warehouse, 0) + min(shipped, line.quantity)
    return min(units, key=lambda w: (-units[w], w))


def cheapest_label(rules: ShippingRules, warehouse_id: str, country: str, weight_grams: int) -> ev.ReturnLabel | None:
    """The cheapest carrier service that takes a parcel of this weight to the warehouse's country."""
    offers: list[tuple[Decimal, str, str]] = []
    for carrier in rules.carriers:
        zone = carrier.zone_of(country)
        if zone is None:
            continue
        for service in carrier.services:
            price = service.price(zone, weight_grams)
            if price is not None:
                offers.append((price, carrier.code, service.code))
    if not offers:
        return None
    price, carrier_code, service_code = min(offers)
    return ev.ReturnLabel(
        carrier=carrier_code, service=service_code, warehouse_id=warehouse_id, weight_grams=weight_grams, price=price
    )


def parcel_weight(lines: Sequence[ev.ReturnLine], products: Mapping[str, Product]) -> int:
    return sum(products.get(line.sku, Product()).weight_grams * line.quantity for line in lines)


@dataclass(frozen=True)
class Receipt:
    """A receipt matched against its RMA: what it accepted (per SKU and disposition), what was not on it."""

    accepted: tuple[ev.ReceivedLine, ...]
    unexpected: tuple[ev.ReceivedLine, ...]
    received: Mapping[str, int]  # units received per SKU of the RMA, this receipt included

    def complete(self, authorised: Mapping[str, int]) -> bool:
        return all(self.received.get(sku, 0) >= units for sku, units in authorised.items())


def match_receipt(
    found: Sequence[ev.ReceivedLine], authorised: Mapping[str, int], received: Mapping[str, int], open_: bool
) -> Receipt:
    """Units up to what the RMA still expects are accepted with the disposition the warehouse gave; anything else
    (another SKU, more units, or a parcel for an RMA that is closed) is set aside for review, never sold."""
    left = {sku: max(0, units - received.get(sku, 0)) for sku, units in authorised.items()} if open_ else {}
    now = dict(received)
    accepted: list[ev.ReceivedLine] = []
    unexpected: list[ev.ReceivedLine] = []
    for line in found:
        take = min(line.quantity, left.get(line.sku, 0))
        if take:
            accepted.append(line.model_copy(update={"quantity": take}))
            left[line.sku] -= take
            now[line.sku] = now.get(line.sku, 0) + take
        if line.quantity > take:
            unexpected.append(line.model_copy(update={"quantity": line.quantity - take}))
    return Receipt(tuple(accepted), tuple(unexpected), now)


def expiry_reason(authorised: Mapping[str, int], received: Mapping[str, int], expires_at: datetime) -> str:
    got, expected = sum(received.values()), sum(authorised.values())
    what = "nothing received" if not got else f"{got} of {expected} units received"
    return f"expired on {expires_at.date().isoformat()}: {what} (parcel lost or never sent)"


def rma_number(serial: int) -> str:
    """RMA-<8 digits><check digit>: the check digit (mod 10 of the weighted digits) catches one mistyped digit."""
    digits = f"{serial:08d}"
    check = sum((3 if i % 2 == 0 else 1) * int(d) for i, d in enumerate(digits)) % 10
    return f"RMA-{digits}{(10 - check) % 10}"
