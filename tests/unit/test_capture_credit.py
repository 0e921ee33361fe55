"""Credit limits of business accounts: an account's limit (its own, its group's, the default group's), what an
order still owes after cancellations and payments, the reason an order goes on credit hold, and which held orders
a fall in exposure lets go."""

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.capture import credit
from shared.contracts.events import SubmittedOrder
from tests.factories import order_document

LIMITS = credit.CreditLimits.model_validate(
    {
        "currency": "EUR",
        "groups": {"new-trade": "1000", "trade": "25000"},
        "accounts": {"ACME": {"group": "trade"}, "NORDWIND": {"limit": "60000"}, "SOLO": {}},
        "default_group": "new-trade",
    }
)


def on_account(lines: list[tuple[str, int]], unit_price: str, **overrides: Any) -> SubmittedOrder:
    document = order_document(lines, unit_price=unit_price, payment_status="pending", **overrides)
    document["customer"]["account"] = "ACME"
    return SubmittedOrder.model_validate(document)


def test_an_account_takes_its_own_limit_else_its_groups_else_the_default_groups() -> None:
    assert LIMITS.limit_of("NORDWIND") == Decimal(60000)
    assert LIMITS.limit_of("ACME") == Decimal(25000)
    assert LIMITS.limit_of("SOLO") == Decimal(1000)  # listed without limit or group: the default group
    assert LIMITS.limit_of("UNLISTED") == Decimal(1000)
    # and without a default group an unlisted account has no limit at all
    assert credit.CreditLimits(groups={"trade": Decimal(5)}).limit_of("UNLISTED") is None
    assert not credit.CreditLimits().limited and LIMITS.limited


def test_a_group_no_one_defined_is_refused_when_the_limits_are_read() -> None:
    with pytest.raises(ValidationError, match="unknown group"):
        credit.CreditLimits.model_validate({"accounts": {"ACME": {"group": "gold"}}})


def test_what_an_order_owes_is_its_value_after_cancellations_less_what_was_paid() -> None:
    # given 3 x A at 100 and 2 x B at 40, shipping 4.95: 384.95
    order = on_account([("A", 3), ("B", 2)], "100.00")
    order = order.model_copy(update={"lines": [order.lines[0], order.lines[1].model_copy(update={"unit_price": 40})]})
    assert credit.unpaid(order, {}, Decimal(0)) == Decimal("384.95")
    # when one A is cancelled and 100 paid: 384.95 - 100 - 100
    assert credit.unpaid(order, {"A": 1}, Decimal(100)) == Decimal("184.95")
    # and when everything is cancelled, shipping goes too: nothing is owed
    assert credit.unpaid(order, {"A": 3, "B": 2}, Decimal(0)) == Decimal(0)
    # and an overpayment owes nothing rather than less than nothing
    assert credit.unpaid(order, {}, Decimal(1000)) == Decimal(0)


def test_an_order_paid_up_front_owes_nothing_and_is_never_weighed() -> None:
    document = order_document([("A", 1)], unit_price="5000.00", payment_status="paid")
    document["customer"]["account"] = "SOLO"
    order = SubmittedOrder.model_validate(document)
    amount = credit.unpaid(order, {}, credit.paid_at_intake(order))
    assert amount == 0
    assert credit.over_limit(LIMITS, "SOLO", order, amount, exposure=Decimal(999)) is None


def test_an_order_taking_the_exposure_over_the_limit_is_held_with_the_amounts() -> None:
    order = on_account([("A", 1)], "395.05")  # 400.00 with shipping
    # given an account of 1,000 that owes 600: 600 + 400 fits exactly
    assert credit.over_limit(LIMITS, "SOLO", order, Decimal(400), Decimal(600)) is None
    # when it owes 600.01, the order goes over
    reason = credit.over_limit(LIMITS, "SOLO", order, Decimal(400), Decimal("600.01"))
    assert (
        reason == "400.00 EUR would take the account's exposure from 600.01 to 1000.01, over its credit limit of 1000"
    )
    # and amounts as stored (four decimals) read as cents, finer ones as they are
    stored = credit.over_limit(LIMITS, "SOLO", order, Decimal("400.0000"), Decimal("600.0050"))
    assert stored is not None and stored.startswith("400.00 EUR would take the account's exposure from 600.005 to")


def test_an_order_in_another_currency_than_the_limit_is_held_for_a_person() -> None:
    order = on_account([("A", 1)], "1.00", currency="USD")
    assert credit.over_limit(LIMITS, "SOLO", order, Decimal(5), Decimal(0)) == (
        "the account's credit limit is in EUR, the order in USD"
    )


def held(unit_price: str) -> credit.OpenOrder:
    return credit.OpenOrder(uuid4(), on_account([("A", 1)], unit_price), {}, Decimal(0))


def test_a_fall_in_exposure_releases_the_oldest_held_orders_that_fit_and_a_big_one_does_not_block_a_small_one() -> None:
    # given an account of 1,000 owing 500, and three orders on credit hold, oldest first: 600, 300, 150 (+4.95 each)
    first, second, third = held("595.05"), held("295.05"), held("145.05")
    found = credit.review(LIMITS, "SOLO", [first, second, third], Decimal(500))
    # then the 600 does not fit (1,100), the 300 does (800), and the 150 after it does too (950)
    assert found.released == (second.order_id, third.order_id)
    assert found.exposure == Decimal(950)


@given(
    owed=st.decimals(min_value=0, max_value=2000, places=2),
    amounts=st.lists(st.integers(min_value=1, max_value=900), max_size=8),
)
def test_releasing_never_takes_the_exposure_over_the_limit(owed: Decimal, amounts: list[int]) -> None:
    waiting = [held(f"{a - Decimal('4.95'):.2f}") if a > 5 else held("0.05") for a in amounts]
    found = credit.review(LIMITS, "SOLO", waiting, owed)
    released = [w for w in waiting if w.order_id in found.released]
    assert found.exposure == owed + sum(credit.unpaid(w.order, {}, Decimal(0)) for w in released)
    assert not released or found.exposure <= Decimal(1000)
    # and each one left waiting would not have fitted when its turn came
    running = owed
    for w in waiting:
        amount = credit.unpaid(w.order, {}, Decimal(0))
        fits = running + amount <= 1000
        assert (w.order_id in found.released) == fits
        running += amount if fits else 0
