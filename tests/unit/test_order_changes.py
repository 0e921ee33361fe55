"""How capture decides an order change: allowed, partly allowed, refused (409) or invalid (422), re-validated like a
new order, and priced (more to pay first, or money due back)."""

from decimal import Decimal
from typing import Any

import pytest

from services.capture import changes
from services.capture.domain import IntakeRules
from services.capture.lifecycle import Progress
from shared.contracts.events import OrderChange, SubmittedOrder
from tests.factories import order_document

RULES = IntakeRules(shippable_countries=frozenset({"NL", "DE", "FR"}), currencies=frozenset({"EUR"}))
CATALOGUE = {"A": True, "B": True, "C": True, "OLD": False}


def an_order(**overrides: Any) -> SubmittedOrder:
    # A x2 and B x1 at 10.00, shipping 4.95: 34.95 paid
    return SubmittedOrder.model_validate(order_document([("A", 2), ("B", 1)], **overrides))


def progress(status: str = "allocated", **kwargs: Any) -> Progress:
    return Progress(status, {"A": 2, "B": 1}, **kwargs)


def change(**fields: Any) -> OrderChange:
    return OrderChange.model_validate({"change_id": "c-1", **fields})


def decide(c: OrderChange, p: Progress | None = None, paid: str = "34.95") -> changes.Plan:
    return changes.plan(p or progress(), an_order(), c, CATALOGUE, RULES, Decimal(paid))


BERLIN = {
    "name": "Test Customer",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


@pytest.mark.parametrize("status", ["allocated", "backordered", "partially_shipped"])
def test_an_order_allocation_has_answered_for_may_change(status: str) -> None:
    assert decide(change(service_level="express"), progress(status)).goes_on


def test_a_new_address_before_shipping_is_allowed_and_reroutes_what_is_still_to_come() -> None:
    plan = decide(change(shipping_address=BERLIN))
    assert plan.verdict == "allowed"
    assert plan.reroute and plan.lines == {"A": 2, "B": 1} and plan.reduced == {}
    assert plan.after is not None and plan.after.shipping_address.city == "Berlin"
    assert (plan.total_before, plan.total_after, plan.to_pay, plan.due_back) == (
        Decimal("34.95"),
        Decimal("34.95"),
        Decimal(0),
        Decimal(0),
    )


def test_a_higher_total_must_be_paid_first() -> None:
    plan = decide(change(lines=[{"sku": "A", "quantity": 3}, {"sku": "C", "quantity": 1, "unit_price": "5.00"}]))
    assert plan.verdict == "allowed" and not plan.reroute
    assert plan.lines == {"A": 3, "B": 1, "C": 1}
    assert (plan.total_after, plan.to_pay, plan.due_back) == (Decimal("49.95"), Decimal("15.00"), Decimal(0))


def test_a_lower_total_is_due_back_and_the_units_fewer_are_named() -> None:
    plan = decide(change(lines=[{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 0}]))
    assert plan.verdict == "allowed"
    assert plan.lines == {"A": 1} and plan.reduced == {"A": 1, "B": 1}
    assert (plan.total_after, plan.to_pay, plan.due_back) == (Decimal("14.95"), Decimal(0), Decimal("20.00"))


def test_quantities_are_the_units_still_to_come_so_cancelled_units_stay_counted() -> None:
    plan = decide(change(lines=[{"sku": "A", "quantity": 2}]), progress(cancelled={"A": 1}))
    assert plan.lines == {"A": 2, "B": 1}
    assert plan.after is not None and [(x.sku, x.quantity) for x in plan.after.lines] == [("B", 1), ("A", 3)]


def test_after_a_parcel_left_an_address_change_applies_to_the_rest_only() -> None:
    plan = decide(change(shipping_address=BERLIN), progress("partially_shipped", shipped={"A": 2}))
    assert plan.verdict == "partly"
    assert plan.reasons == ("A x2 shipped already: the change applies to what has not",)
    assert plan.lines == {"B": 1}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("shipped", "the order has shipped and can no longer be changed"),
        ("delivered", "the order was delivered and can no longer be changed"),
        ("cancelled", "the order is cancelled"),
        ("on_hold", "the order is on hold: release it first"),
        ("validated", "the order is still being allocated: try again in a moment"),
    ],
)
def test_past_changing_it_is_refused_with_the_reason(status: str, reason: str) -> None:
    assert decide(change(service_level="express"), progress(status)) == changes.Plan("refused", (reason,))


def test_it_is_revalidated_like_a_new_order() -> None:
    unshippable = {**BERLIN, "country": "US"}
    plan = decide(
        change(
            shipping_address=unshippable,
            lines=[
                {"sku": "NOPE", "quantity": 1, "unit_price": "1.00"},
                {"sku": "OLD", "quantity": 1, "unit_price": "1.00"},
            ],
        )
    )
    assert plan.verdict == "invalid"
    assert plan.reasons == (
        "line 3: unknown SKU NOPE",
        "line 4: SKU OLD is not sold any more",
        "we do not ship to US",
    )


def test_changes_that_do_not_fit_the_order_are_invalid() -> None:
    assert decide(change()).reasons == ("the change names nothing to change: shipping_address, service_level or lines",)
    assert decide(change(lines=[{"sku": "C", "quantity": 1}])).reasons == ("C: a line added needs its unit_price",)
    assert decide(change(lines=[{"sku": "A", "quantity": 1, "unit_price": "9.00"}])).reasons == (
        "A: sold at 10.00 in this order; a change does not reprice a line",
    )
    assert decide(change(lines=[{"sku": "A", "quantity": 2}])).reasons == ("the change changes nothing",)
    emptied = change(lines=[{"sku": "A", "quantity": 0}, {"sku": "B", "quantity": 0}])
    assert decide(emptied).reasons == (
        "the order has no lines",
        "the change leaves nothing to send: cancel the order instead",
    )


def test_a_repeat_is_recognised_by_what_it_asks_not_its_reason() -> None:
    first = change(service_level="express", reason="in a hurry")
    assert changes.fingerprint(first) == changes.fingerprint(change(service_level="express"))
    assert changes.fingerprint(first) != changes.fingerprint(change(service_level="overnight"))
