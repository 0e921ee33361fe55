"""Shopify's `orders/create` webhook: verifying its signature and mapping its body to the generic order.
Pure: no I/O.

Shopify signs the raw body with the shop's (app's) secret: base64 of HMAC-SHA256, in X-Shopify-Hmac-Sha256.
Amounts are decimal strings in the shop's currency. A line's unit price here is what the customer pays per
unit after every discount, whichever way the body's API version expresses them:
- current versions allocate each discount, order-level codes included, to the lines and shipping lines
  (`discount_allocations`);
- older ones give a line's own discount as its `total_discount` and an order-level discount only in the
  order's totals (`total_discounts`, `subtotal_price`).
So the lines are reconciled with the order's own subtotal (after all discounts, before shipping and tax):
what the lines still come to above it is an order-level discount, spread over the shipped lines in
proportion to what they cost. The payment is the amount charged: `current_total_price`, else `total_price`.

For the risk rules: the billing address (when complete), the browser's IP, and Shopify's own risk recommendation
when the body carries it (`risk.recommendation` as the Admin API's order risk summary gives it, or the most severe
of `risks[].recommendation`); an unusable one of these is left out, never a reason to refuse the order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from shared.contracts.events import MAX_SUBMITTED_QUANTITY, MONEY_MAX, ServiceLevel, SubmittedOrder

CHANNEL = "shopify"
ORDERS_CREATE = "orders/create"
# Shopify's financial_status -> the generic payment status (capture accepts authorized and paid).
PAYMENT_STATUS = {
    "paid": "paid",
    "authorized": "authorized",
    "partially_paid": "pending",
    "pending": "pending",
    "voided": "voided",
    "refunded": "refunded",
    "partially_refunded": "refunded",
    "expired": "declined",
}
CENTS, FINEST = Decimal("0.01"), Decimal("0.0001")


class MappingProblems(ValueError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time comparison of the header with the HMAC of the raw body."""
    if not header:
        return False
    return hmac.compare_digest(signature(body, secret).encode(), header.strip().encode("utf-8", "replace"))


def to_order(body: Any, service_levels: Mapping[str, ServiceLevel]) -> SubmittedOrder:
    """The generic order for an `orders/create` body, or MappingProblems with every reason found.

    `service_levels` maps a shipping line's code or title (lower case) to a service level; unknown or
    absent shipping lines ship `standard`. Lines that need no shipping (gift cards, digital goods) are
    not for the warehouses and are left out."""
    if not isinstance(body, dict):
        raise MappingProblems(["the body is not a JSON object"])
    reasons: list[str] = []
    shipping_lines = [line for line in body.get("shipping_lines") or [] if isinstance(line, dict)]
    shipping_price = sum((_shipping_price(line, reasons) for line in shipping_lines), Decimal(0))
    document = {
        "channel": CHANNEL,
        "external_id": str(body.get("id") or ""),
        "placed_at": body.get("created_at"),
        "currency": body.get("currency"),
        "customer": _customer(body, reasons),
        "shipping_address": _address(body.get("shipping_address"), reasons),
        "service_level": _service_level(shipping_lines, service_levels),
        "lines": _lines(body, reasons),
        "shipping_price": _text(shipping_price),
        "payment": _payment(body, reasons),
        "billing_address": _billing_address(body.get("billing_address")),
        "client_ip": _ip(body.get("browser_ip") or _object(body.get("client_details")).get("browser_ip")),
        "channel_risk": _risk(body),
    }
    if not document["external_id"]:
        reasons.append("id: missing")
    if reasons:
        raise MappingProblems(reasons)
    try:
        return SubmittedOrder.model_validate(document)
    except ValidationError as exc:
        raise MappingProblems(
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)]
        ) from None


def _money(value: Any, where: str, reasons: list[str]) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = Decimal("NaN")
    if value is None or not amount.is_finite() or abs(amount) > MONEY_MAX:
        reasons.append(f"{where}: not an amount")  # an absurd one would also overflow the arithmetic below
        return Decimal(0)
    return amount


def _discounts(item: dict[str, Any], where: str, reasons: list[str]) -> Decimal:
    return sum(
        (
            _money(a.get("amount"), f"{where}.discount_allocations", reasons)
            for a in item.get("discount_allocations") or []
            if isinstance(a, dict)
        ),
        Decimal(0),
    )


def _line_discount(item: dict[str, Any], where: str, reasons: list[str]) -> Decimal:
    """The discount on one line item: its allocations when the body has them (a line's `total_discount` is
    then deprecated, and may repeat them), else its `total_discount` (older API versions)."""
    if "discount_allocations" in item:
        return _discounts(item, where, reasons)
    return _money(item.get("total_discount") or "0", f"{where}.total_discount", reasons)


@dataclass(frozen=True)
class _Line:
    sku: str
    quantity: int
    paid: Decimal  # for all its units, after the discounts known so far


def _lines(body: dict[str, Any], reasons: list[str]) -> list[dict[str, Any]]:
    items = body.get("line_items")
    if not isinstance(items, list) or not items:
        reasons.append("line_items: no lines")
        return []
    shipped: list[_Line] = []
    every_item = Decimal(0)  # what all line items come to, shipped or not, after their own discounts
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            reasons.append(f"{where}: not an object")
            continue
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            reasons.append(f"{where}.quantity: not a positive whole number")
            continue
        if quantity > MAX_SUBMITTED_QUANTITY:
            reasons.append(f"{where}.quantity: over {MAX_SUBMITTED_QUANTITY:,}")
            continue
        paid = _money(item.get("price"), f"{where}.price", reasons) * quantity - _line_discount(item, where, reasons)
        every_item += paid
        if item.get("requires_shipping") is False or item.get("gift_card") is True:
            continue
        if not item.get("sku"):
            reasons.append(f"{where}.sku: missing (the variant has no SKU)")
            continue
        shipped.append(_Line(str(item["sku"]), quantity, max(paid, Decimal(0))))
    order_discount = every_item - _subtotal(body, every_item, reasons)
    after_order_discount = _spread(order_discount, [line.paid for line in shipped])
    return [
        {"sku": line.sku, "quantity": line.quantity, "unit_price": _text(_unit_price(amount, line.quantity))}
        for line, amount in zip(shipped, after_order_discount, strict=True)
    ]


def _subtotal(body: dict[str, Any], every_item: Decimal, reasons: list[str]) -> Decimal:
    """The order's subtotal after all discounts (before shipping, duties and tax); the lines' own sum when the
    body has none."""
    if body.get("subtotal_price") is None:
        return every_item
    return _money(body["subtotal_price"], "subtotal_price", reasons)


def _spread(discount: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    """`amounts` less `discount` shared in proportion to them, in cents (largest remainders get the odd
    cents), so that they add up to exactly their sum less the discount; never below zero."""
    total = sum(amounts, Decimal(0))
    if discount <= 0 or total <= 0:
        return amounts
    discount = min(discount, total)
    exact = [discount * amount / total for amount in amounts]
    shares = [share.quantize(CENTS, rounding=ROUND_FLOOR) for share in exact]
    odd_cents = int((discount - sum(shares, Decimal(0))) / CENTS)
    by_remainder = sorted(range(len(amounts)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[:odd_cents]:
        shares[i] += CENTS
    return [max(amount - share, Decimal(0)) for amount, share in zip(amounts, shares, strict=True)]


def _unit_price(paid: Decimal, quantity: int) -> Decimal:
    """Cents when the line divides evenly, else rounded down to 1/100 cent: the lines never add up to more
    than the customer was charged."""
    exact = paid / quantity
    cents = exact.quantize(CENTS)
    return cents if cents == exact else exact.quantize(FINEST, rounding=ROUND_FLOOR)


def _text(amount: Decimal) -> str:
    """A decimal string as the generic order takes it: plain notation, never negative (nor -0)."""
    return "0" if amount < 0 else f"{abs(amount):f}"  # abs: -0.00 is 0.00


def _shipping_price(line: dict[str, Any], reasons: list[str]) -> Decimal:
    if line.get("discounted_price") is not None:
        return _money(line["discounted_price"], "shipping_lines.discounted_price", reasons)
    return _money(line.get("price"), "shipping_lines.price", reasons) - _discounts(line, "shipping_lines", reasons)


def _service_level(lines: list[dict[str, Any]], service_levels: Mapping[str, ServiceLevel]) -> ServiceLevel:
    for line in lines:
        for name in (line.get("code"), line.get("title")):
            if isinstance(name, str) and name.strip().lower() in service_levels:
                return service_levels[name.strip().lower()]
    return "standard"


def _address(address: Any, reasons: list[str]) -> dict[str, Any] | None:
    if not isinstance(address, dict):
        reasons.append("shipping_address: missing (nothing to ship to)")
        return None
    fields = {"line1": "address1", "city": "city", "postal_code": "zip", "country": "country_code"}
    for name in fields.values():
        if not address.get(name):
            reasons.append(f"shipping_address.{name}: missing")
    return {
        "name": address.get("name") or _full_name(address) or "",
        "line1": address.get("address1"),
        "line2": address.get("address2") or None,
        "city": address.get("city"),
        "region": address.get("province_code") or None,
        "postal_code": address.get("zip"),
        "country": address.get("country_code"),
    }


def _billing_address(address: Any) -> dict[str, Any] | None:
    ignored: list[str] = []
    mapped = _address(address, ignored) if isinstance(address, dict) else None
    return None if ignored or mapped is None or not mapped["name"] else mapped


def _ip(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).strip())) if value else None
    except ValueError:
        return None


RISK_SEVERITY = ("accept", "investigate", "cancel")


def _risk(body: dict[str, Any]) -> str | None:
    """Shopify's recommendation for the order, the most severe when it gives several."""
    said = [_object(body.get("risk")).get("recommendation")]
    said += [_object(r).get("recommendation") for r in body.get("risks") or [] if isinstance(body.get("risks"), list)]
    known = [str(r).lower() for r in said if isinstance(r, str) and r.lower() in RISK_SEVERITY]
    return max(known, key=RISK_SEVERITY.index) if known else None


def _customer(body: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    customer, address = _object(body.get("customer")), _object(body.get("shipping_address"))
    email = body.get("email") or body.get("contact_email") or customer.get("email")
    if not email:
        reasons.append("email: missing (no email on the order or its customer)")
    return {
        "email": email,
        "name": _full_name(customer) or address.get("name") or _full_name(address) or "Customer",
        "phone": body.get("phone") or customer.get("phone") or address.get("phone") or None,
    }


def _payment(body: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    status = PAYMENT_STATUS.get(str(body.get("financial_status")))
    if status is None:
        reasons.append(f"financial_status: {str(body.get('financial_status'))[:40]!r} is not a known status")
    charged = "current_total_price" if body.get("current_total_price") is not None else "total_price"
    amount = _money(body.get(charged), charged, reasons)
    return {"status": status, "amount": f"{amount:f}", "currency": body.get("currency")}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _full_name(person: dict[str, Any]) -> str:
    return " ".join(str(part) for part in (person.get("first_name"), person.get("last_name")) if part).strip()


def external_id(shop_domain: str, shopify_order_id: str) -> str:
    """The order's external id: Shopify's order id within the shop that sent it (ids are unique per shop only)."""
    return f"{shop_domain.strip().lower()}:{shopify_order_id}"
