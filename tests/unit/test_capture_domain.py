from decimal import Decimal

from services.capture import domain
from shared.events import SubmittedOrder
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
