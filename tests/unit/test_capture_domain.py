import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.capture import domain, handlers
from shared.contracts.events import OrderValidated, SubmittedOrder
from tests.factories import order_document

RULES = domain.IntakeRules(shippable_countries=frozenset({"NL", "DE"}), currencies=frozenset({"EUR"}))
CATALOGUE = {"SKU-1": True, "SKU-2": True, "OLD": False}


def order(**kwargs: object) -> SubmittedOrder:
    return SubmittedOrder.model_validate(order_document(**kwargs))  # type: ignore[arg-type]


def test_a_paid_order_for_known_skus_to_a_shippable_country_is_accepted() -> None:
    assert domain.rejection_reasons(order(lines=[("SKU-1", 2), ("SKU-2", 1)]), CATALOGUE, RULES) == []


def test_total_is_lines_plus_shipping() -> None:
    assert domain.order_total(order(lines=[("SKU-1", 3)], unit_price="2.50")) == Decimal("12.45")


def test_each_broken_rule_gives_its_own_reason() -> None:
    bad = order(lines=[("SKU-1", 0), ("NOPE", 1), ("OLD", 1001)], country="ZZ", payment_status="pending", amount="1.00")
    reasons = domain.rejection_reasons(bad, CATALOGUE, RULES)
    assert "line 1: quantity 0 outside 1..1000" in reasons
    assert "line 2: unknown SKU NOPE" in reasons
    assert "line 3: SKU OLD is not sold any more" in reasons
    assert "line 3: quantity 1001 outside 1..1000" in reasons
    assert "payment is pending, must be authorized or paid" in reasons
    assert any(r.startswith("payment 1.00 is less than the order total") for r in reasons)
    assert "we do not ship to ZZ" in reasons


def test_an_unpaid_order_is_accepted_only_when_bought_on_a_business_account_to_be_invoiced() -> None:
    document = order_document([("SKU-1", 1)], payment_status="pending")
    assert "payment is pending, must be authorized or paid" in domain.rejection_reasons(
        SubmittedOrder.model_validate(document), CATALOGUE, RULES
    )
    document["customer"]["account"] = "ACME"
    assert domain.rejection_reasons(SubmittedOrder.model_validate(document), CATALOGUE, RULES) == []
    # a declined payment is refused on an account too
    document["payment"]["status"] = "declined"
    assert "payment is declined, must be authorized or paid" in domain.rejection_reasons(
        SubmittedOrder.model_validate(document), CATALOGUE, RULES
    )


def test_line_count_and_currency_limits() -> None:
    many = order(lines=[("SKU-1", 1)] * 101)
    assert "too many lines: 101, at most 100" in domain.rejection_reasons(many, CATALOGUE, RULES)
    empty = order(lines=[("SKU-1", 1)])
    empty = empty.model_copy(update={"lines": []})
    assert "the order has no lines" in domain.rejection_reasons(empty, CATALOGUE, RULES)
    dollars = order(currency="USD")
    assert "currency USD is not accepted" in domain.rejection_reasons(dollars, CATALOGUE, RULES)


def test_payment_in_another_currency_is_refused() -> None:
    document = order_document()
    document["payment"]["currency"] = "USD"
    reasons = domain.rejection_reasons(SubmittedOrder.model_validate(document), CATALOGUE, RULES)
    assert reasons == ["payment currency USD differs from order currency EUR"]


def test_repeated_skus_are_reserved_as_one_line() -> None:
    items = domain.items_to_reserve(order(lines=[("SKU-1", 2), ("SKU-2", 1), ("SKU-1", 3)]))
    assert [(i.sku, i.quantity) for i in items] == [("SKU-1", 5), ("SKU-2", 1)]


def test_a_sku_over_the_quantity_rule_across_its_lines_is_a_rejection_reason() -> None:
    # given two lines of the same SKU, each within 1..1000 but 1200 units together
    split = order(lines=[("SKU-1", 600), ("SKU-2", 1), ("SKU-1", 600)])

    reasons = domain.rejection_reasons(split, CATALOGUE, RULES)

    assert reasons == ["SKU SKU-1: quantity 1200 over its 2 lines outside 1..1000"]


def test_every_order_the_rules_accept_can_be_announced_as_validated() -> None:
    # the decision builds OrderValidated with one line per SKU: what the rules accept must fit that contract
    orders = [
        order(lines=[("SKU-1", 500), ("SKU-1", 500)], amount="100000.00"),
        order(lines=[("SKU-1", 1000), ("SKU-2", 1000)], amount="100000.00"),
    ]
    for accepted in orders:
        assert domain.rejection_reasons(accepted, CATALOGUE, RULES) == []
        decision = handlers.decision(uuid.uuid4(), accepted, domain.order_total(accepted), [], datetime.now(UTC))
        assert isinstance(decision, OrderValidated)
    over = order(lines=[("SKU-1", 500), ("SKU-1", 501)], amount="100000.00")
    assert domain.rejection_reasons(over, CATALOGUE, RULES) == [
        "SKU SKU-1: quantity 1001 over its 2 lines outside 1..1000"
    ]


@pytest.mark.parametrize("quantity", [-1, 1_000_001, 10**30])
def test_a_quantity_outside_the_schema_bounds_is_a_schema_error(quantity: int) -> None:
    with pytest.raises(ValidationError) as raised:
        order(lines=[("SKU-1", quantity)], amount="1.00")
    assert [e["loc"] for e in raised.value.errors()] == [("lines", 0, "quantity")]


def test_a_quantity_inside_the_schema_but_outside_the_rule_is_a_business_rejection() -> None:
    for quantity in (0, 1_000_000):
        reasons = domain.rejection_reasons(order(lines=[("SKU-1", quantity)], amount="1.00"), CATALOGUE, RULES)
        assert f"line 1: quantity {quantity} outside 1..1000" in reasons


@pytest.mark.parametrize(
    "amount",
    [
        *(12, 12.5, "12.505001", "1e3", " 12.50", "-1.00", "1000000000.01", "NaN"),
        # built in Python: held to what the pattern allows a string
        *(Decimal("NaN"), Decimal("Infinity"), Decimal("1.00001"), Decimal("-1"), Decimal("1E+10")),
    ],
)
def test_money_is_a_decimal_string_within_the_schema_or_a_schema_error(amount: object) -> None:
    document = order_document()
    document["payment"]["amount"] = amount
    with pytest.raises(ValidationError) as raised:
        SubmittedOrder.model_validate(document)
    assert [e["loc"] for e in raised.value.errors()] == [("payment", "amount")]


@pytest.mark.parametrize("amount", ["0", "12.5", "12.5050", "999999999.9999", "1000000000.00"])
def test_money_the_schema_allows_is_read_exactly(amount: str) -> None:
    document = order_document()
    document["payment"]["amount"] = amount
    assert SubmittedOrder.model_validate(document).payment.amount == Decimal(amount)


def test_money_built_in_python_within_the_schema_is_kept_and_written_as_a_decimal_string() -> None:
    document = order_document()
    document["payment"]["amount"] = Decimal("12.5")
    order = SubmittedOrder.model_validate(document)
    assert order.payment.amount == Decimal("12.5")
    assert order.model_dump(mode="json")["payment"]["amount"] == "12.5"


def test_text_with_a_nul_character_is_a_schema_error_naming_the_field() -> None:
    document = order_document()
    document["customer"]["name"] = "Jan\u0000Jansen"
    with pytest.raises(ValidationError) as raised:
        SubmittedOrder.model_validate(document)
    assert [(e["loc"], e["msg"]) for e in raised.value.errors()] == [
        (("customer", "name"), "text must not contain NUL characters")
    ]


@pytest.mark.parametrize(
    "placed_at", ["0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59+00:00", "9999-12-31T23:00:00-05:00"]
)
def test_a_placing_time_no_database_can_store_is_a_schema_error_not_a_crash(placed_at: str) -> None:
    document = order_document([("SKU-1", 1)], placed_at=placed_at)
    with pytest.raises(ValidationError, match="between 1970-01-01 and 9999-01-01"):
        SubmittedOrder.model_validate(document)
