"""Shopify's orders/create body (a realistic sample in tests/fixtures) mapped to the generic order, and the
webhook signature check."""

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.capture import domain, shopify
from services.capture.settings import CaptureSettings

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "shopify_orders_create.json"
LEVELS = CaptureSettings().shopify_service_levels


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())  # type: ignore[no-any-return]


def problems(body: Any) -> list[str]:
    with pytest.raises(shopify.MappingProblems) as raised:
        shopify.to_order(body, LEVELS)
    return raised.value.reasons


def test_the_sample_order_maps_to_the_generic_order() -> None:
    order = shopify.to_order(sample(), LEVELS)
    assert (order.channel, order.external_id) == ("shopify", "5876402340021")
    assert order.placed_at == datetime(2026, 3, 10, 13, 22, 31, tzinfo=UTC)
    assert order.currency == "EUR"
    assert (order.customer.email, order.customer.name, order.customer.phone) == (
        "anna.devries@example.com",
        "Anna de Vries",
        "+31 20 555 0142",
    )
    address = order.shipping_address
    assert (address.name, address.line1, address.line2, address.city) == (
        "Anna de Vries",
        "Prinsengracht 263",
        "3e verdieping",
        "Amsterdam",
    )
    assert (address.region, address.postal_code, address.country) == ("NH", "1016 GV", "NL")
    assert order.service_level == "express"
    assert order.shipping_price == Decimal("9.95")
    assert (order.payment.status, order.payment.amount, order.payment.currency) == ("paid", Decimal("87.90"), "EUR")


def test_lines_carry_sku_quantity_and_the_price_paid_after_line_discounts_and_skip_gift_cards() -> None:
    order = shopify.to_order(sample(), LEVELS)
    # 2 x 25.00 with a 5.00 discount allocated to the line: 22.50 each; the gift card needs no warehouse.
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("TSHIRT-BLK-M", 2, Decimal("22.5")),
        ("MUG-WHT", 1, Decimal("12.95")),
    ]


def test_a_discount_that_does_not_divide_evenly_rounds_down_so_lines_never_exceed_the_charge() -> None:
    body = sample()
    body["line_items"][0]["quantity"] = 3
    body["line_items"][0]["discount_allocations"][0]["amount"] = "10.00"
    body["subtotal_price"] = "97.95"  # 3 x 25.00 - 10.00 + 12.95 + 20.00, as Shopify would total it
    line = shopify.to_order(body, LEVELS).lines[0]
    assert line.unit_price == Decimal("21.6666")
    assert line.unit_price * 3 <= Decimal("75.00") - Decimal("10.00")


@pytest.mark.parametrize(
    ("financial_status", "payment"),
    [
        ("paid", "paid"),
        ("authorized", "authorized"),
        ("pending", "pending"),
        ("partially_paid", "pending"),
        ("voided", "voided"),
        ("refunded", "refunded"),
        ("expired", "declined"),
    ],
)
def test_financial_status_maps_to_the_payment_status(financial_status: str, payment: str) -> None:
    body = sample()
    body["financial_status"] = financial_status
    assert shopify.to_order(body, LEVELS).payment.status == payment


@pytest.mark.parametrize(
    ("code", "title", "level"),
    [
        ("Express", "x", "express"),
        ("custom", "Next day", "overnight"),
        ("Standard", "Standard", "standard"),
        ("custom", "Tran", "standard"),
    ],
)
def test_shipping_line_code_or_title_chooses_the_service_level_default_standard(
    code: str, title: str, level: str
) -> None:
    body = sample()
    body["shipping_lines"][0].update(code=code, title=title)
    assert shopify.to_order(body, LEVELS).service_level == level


def test_no_shipping_lines_means_standard_and_free_shipping() -> None:
    body = sample()
    body["shipping_lines"] = []
    order = shopify.to_order(body, LEVELS)
    assert (order.service_level, order.shipping_price) == ("standard", Decimal(0))


def test_a_shipping_discount_is_taken_off_the_shipping_price() -> None:
    body = sample()
    del body["shipping_lines"][0]["discounted_price"]
    body["shipping_lines"][0]["discount_allocations"] = [{"amount": "4.95"}]
    assert shopify.to_order(body, LEVELS).shipping_price == Decimal("5.00")


def test_email_falls_back_to_the_customer_and_name_to_the_address() -> None:
    body = sample()
    body["email"] = ""
    body["contact_email"] = None
    body["customer"] = {"email": "someone@example.com"}
    order = shopify.to_order(body, LEVELS)
    assert (order.customer.email, order.customer.name) == ("someone@example.com", "Anna de Vries")


def test_every_mapping_problem_is_reported_without_the_values() -> None:
    body = sample()
    body["line_items"][0]["sku"] = ""
    body["line_items"][1]["quantity"] = 0
    body["financial_status"] = "mystery"
    body["email"] = body["contact_email"] = ""
    body["customer"] = None
    del body["shipping_address"]["zip"]
    reasons = problems(body)
    assert reasons == [
        "email: missing (no email on the order or its customer)",
        "shipping_address.zip: missing",
        "line_items[0].sku: missing (the variant has no SKU)",
        "line_items[1].quantity: not a positive whole number",
        "financial_status: 'mystery' is not a known status",
    ]


def test_an_order_without_shipping_address_or_lines_is_a_mapping_problem() -> None:
    body = sample()
    body["shipping_address"] = None
    body["line_items"] = []
    assert problems(body) == ["shipping_address: missing (nothing to ship to)", "line_items: no lines"]
    assert problems([1, 2]) == ["the body is not a JSON object"]


def test_schema_problems_after_mapping_name_the_field_but_not_the_value() -> None:
    body = sample()
    body["currency"] = "euro"
    body["created_at"] = "yesterday"
    reasons = problems(body)
    assert any(r.startswith("placed_at: ") for r in reasons)
    assert any(r.startswith("currency: ") for r in reasons)
    assert not any("yesterday" in r or "euro" in r for r in reasons)


def test_mapping_does_not_change_the_body() -> None:
    body = sample()
    before = copy.deepcopy(body)
    shopify.to_order(body, LEVELS)
    assert body == before


def test_the_signature_is_the_base64_hmac_sha256_of_the_raw_body() -> None:
    raw = SAMPLE.read_bytes()
    header = base64.b64encode(hmac.new(b"s3cret", raw, hashlib.sha256).digest()).decode()
    assert shopify.signature_valid(raw, header, "s3cret")
    assert not shopify.signature_valid(raw + b" ", header, "s3cret")  # the raw bytes, not the parsed JSON
    assert not shopify.signature_valid(raw, header, "other")
    assert not shopify.signature_valid(raw, None, "s3cret")
    assert not shopify.signature_valid(raw, "", "s3cret")
    assert not shopify.signature_valid(raw, "not base64 ☃", "s3cret")


FIXTURES = SAMPLE.parent
RULES = domain.IntakeRules(
    shippable_countries=frozenset({"DE", "US", "GB", "NL"}), currencies=frozenset({"EUR", "USD", "GBP"})
)


def version(api_version: str) -> dict[str, Any]:
    """An orders/create body as Shopify sends it under that API version."""
    return json.loads((FIXTURES / f"shopify_orders_create_{api_version}.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("api_version", "lines", "shipping", "charged"),
    [
        # line `total_discount` and an order-level code only in `total_discounts`: no discount_allocations
        ("2019-10", [("BOOT-BRN-42", 2, "93.10"), ("SOCK-WOOL", 1, "58.79")], "9.99", "254.98"),
        # an order-level code allocated to the lines; taxes on top of the prices
        ("2023-01", [("JACKET-NVY-L", 1, "108.00"), ("BEANIE-GRY", 2, "22.50")], "12.50", "179.08"),
        # allocations on the lines and on the shipping line (free shipping); a gift card bought alongside
        ("2025-01", [("LAMP-BRASS", 1, "72.00"), ("BULB-E27", 4, "5.85")], "0.00", "120.40"),
    ],
)
def test_every_api_version_maps_to_the_price_paid_per_unit_and_the_amount_charged(
    api_version: str, lines: list[tuple[str, int, str]], shipping: str, charged: str
) -> None:
    order = shopify.to_order(version(api_version), LEVELS)

    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        (sku, quantity, Decimal(price)) for sku, quantity, price in lines
    ]
    assert order.shipping_price == Decimal(shipping)
    assert (order.payment.status, order.payment.amount) == ("paid", Decimal(charged))
    # and capture does not take the paid order for an underpaid one
    catalogue = {line.sku: True for line in order.lines}
    assert domain.rejection_reasons(order, catalogue, RULES) == []


def test_an_order_level_discount_not_on_the_lines_is_spread_over_them_in_cents_up_to_the_subtotal() -> None:
    # given the older representation: 190.00 + 59.99 after the line's own discount, 5.00 off the order
    body = version("2019-10")

    order = shopify.to_order(body, LEVELS)

    # then the lines share the 5.00 in proportion (3.80 and 1.20) and add up to the subtotal exactly
    assert sum(line.unit_price * line.quantity for line in order.lines) == Decimal(body["subtotal_price"])


def test_a_line_discount_is_counted_once_when_both_representations_are_present() -> None:
    body = sample()
    body["line_items"][0]["total_discount"] = "5.00"  # the same 5.00 as its discount allocation
    line = shopify.to_order(body, LEVELS).lines[0]
    assert line.unit_price == Decimal("22.50")


def test_the_charge_is_the_current_total_when_shopify_sends_one_else_the_total() -> None:
    body = sample()
    body["current_total_price"] = "80.00"
    assert shopify.to_order(body, LEVELS).payment.amount == Decimal("80.00")
    del body["current_total_price"]
    assert shopify.to_order(body, LEVELS).payment.amount == Decimal("87.90")


def test_absurd_amounts_and_quantities_are_mapping_problems_not_arithmetic_errors() -> None:
    body = sample()
    body["line_items"][0]["price"] = "1e999999"
    body["line_items"][1]["quantity"] = 10**30
    body["current_total_price"] = "-1e50"
    assert problems(body) == [
        "line_items[0].price: not an amount",
        "line_items[1].quantity: over 1,000,000",
        "current_total_price: not an amount",
    ]


def test_billing_address_browser_ip_and_shopifys_risk_recommendation_feed_the_risk_rules() -> None:
    order = shopify.to_order(sample(), LEVELS)
    assert order.billing_address is not None and order.billing_address.country == "NL"
    assert order.client_ip == "203.0.113.24"
    assert order.channel_risk is None
    risky = {**sample(), "risks": [{"recommendation": "investigate"}, {"recommendation": "cancel"}, {"x": 1}]}
    assert shopify.to_order(risky, LEVELS).channel_risk == "cancel"
    summary = {**sample(), "risk": {"recommendation": "INVESTIGATE"}}
    assert shopify.to_order(summary, LEVELS).channel_risk == "investigate"


def test_an_unusable_billing_address_ip_or_risk_is_left_out_not_a_reason_to_refuse() -> None:
    body = {
        **sample(),
        "billing_address": {"country_code": "DE"},
        "browser_ip": "not an ip",
        "client_details": None,
        "risks": "none",
        "risk": {"recommendation": "NONE"},
    }
    order = shopify.to_order(body, LEVELS)
    assert (order.billing_address, order.client_ip, order.channel_risk) == (None, None, None)
