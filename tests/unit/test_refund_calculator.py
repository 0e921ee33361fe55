"""The refund calculator: examples explained line by line, and properties over any order and any way of splitting
a return: never negative, never above what was captured less what was refunded, partial refunds adding up to the
full refund."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.returns.refunds import (
    PaidLine,
    PaidOrder,
    Refunded,
    ReturnedUnits,
    calculate,
    change_refund,
    spread,
)

D = Decimal


def test_a_line_is_refunded_at_the_price_paid_less_its_share_of_the_order_discount() -> None:
    # given two lines of 30.00 and 10.00 with a 4.00 order discount (3.00 and 1.00 of it), shipping 4.95
    order = PaidOrder((PaidLine("A", 2, D("15.00")), PaidLine("B", 1, D("10.00"))), D("4.95"), D("40.95"), D("4.00"))
    # when one unit of A comes back because it no longer fits
    refund = calculate(order, [ReturnedUnits("A", 1, "size.too_small")], Refunded(), "EUR")
    # then it refunds half of what A was paid: (30.00 - 3.00) / 2
    assert refund.total == D("13.50")
    assert refund.explanation == ("A: 1 of 2 units (size.too_small), paid 13.50 EUR = 13.50 EUR", "refund: 13.50 EUR")


def test_line_discounts_restocking_fees_and_shipping_are_explained() -> None:
    order = PaidOrder((PaidLine("A", 1, D("50.00"), discount=D("5.00")), PaidLine("B", 1, D("20.00"))), D("6.00"),
                      D("71.00"))  # fmt: skip
    refund = calculate(
        order,
        [ReturnedUnits("A", 1, "no_longer_needed", restocking_fee_percent=D(10)),
         ReturnedUnits("B", 1, "wrong_item", refund_shipping=True)],
        Refunded(),
        "EUR",
    )  # fmt: skip
    assert refund.explanation == (
        "A: 1 of 1 units (no_longer_needed), paid 45.00 EUR, less restocking fee 10% 4.50 EUR = 40.50 EUR",
        "B: 1 of 1 units (wrong_item), paid 20.00 EUR = 20.00 EUR",
        "shipping refunded (wrong_item): 6.00 EUR",
        "refund: 66.50 EUR",
    )
    assert refund.total == D("66.50")


def test_the_refund_is_capped_at_what_was_captured_less_what_was_refunded() -> None:
    order = PaidOrder((PaidLine("A", 1, D("50.00")),), D("0"), D("50.00"))
    refund = calculate(order, [ReturnedUnits("A", 1, "wrong_item")], Refunded(amount=D("45.00")), "EUR")
    assert refund.computed == D("50.00") and refund.total == D("5.00")
    assert "capped at 5.00 EUR: 50.00 captured less 45.00 refunded before" in refund.explanation


def test_units_refunded_before_are_not_refunded_again() -> None:
    order = PaidOrder((PaidLine("A", 1, D("50.00")),), D("0"), D("50.00"))
    again = calculate(order, [ReturnedUnits("A", 1, "wrong_item")], Refunded({"A": 1}, amount=D("50.00")))
    assert again.total == 0 and again.lines == ()


def test_the_order_discount_is_spread_to_the_cent() -> None:
    assert spread(D("0.10"), [D("1.00"), D("1.00"), D("1.00")]) == [D("0.04"), D("0.03"), D("0.03")]
    assert sum(spread(D("7.77"), [D("3.33"), D("12.01"), D("0.05")])) == D("7.77")


# ---- properties ----

money = st.integers(min_value=0, max_value=100_000).map(lambda c: D(c) / 100)


@st.composite
def orders(draw: st.DrawFn) -> tuple[PaidOrder, list[ReturnedUnits]]:
    count = draw(st.integers(1, 4))
    lines = []
    for n in range(count):
        quantity, price = draw(st.integers(1, 6)), draw(money)
        discount = draw(st.integers(0, int(price * quantity * 100))) / D(100)
        lines.append(PaidLine(f"S{n}", quantity, price, discount))
    net = sum((line.unit_price * line.quantity - line.discount for line in lines), D(0))
    order_discount = draw(st.integers(0, int(net * 100))) / D(100)
    shipping = draw(money)
    captured = draw(st.one_of(st.just(net - order_discount + shipping), money))
    order = PaidOrder(tuple(lines), shipping, captured, order_discount)
    returned = [
        ReturnedUnits(
            line.sku,
            draw(st.integers(1, line.quantity)),
            "r",
            refund_shipping=draw(st.booleans()),
            restocking_fee_percent=D(draw(st.integers(0, 100))),
        )
        for line in lines
        if draw(st.booleans())
    ]
    return order, returned


def parts(draw: st.DrawFn, returned: list[ReturnedUnits]) -> list[list[ReturnedUnits]]:
    """The same units returned in several requests, each line's units split into chunks."""
    chunks: list[list[ReturnedUnits]] = []
    for item in returned:
        left = item.quantity
        step = 0
        while left:
            take = draw(st.integers(1, left))
            while len(chunks) <= step:
                chunks.append([])
            chunks[step].append(ReturnedUnits(item.sku, take, item.reason, item.refund_shipping,
                                              item.restocking_fee_percent))  # fmt: skip
            left -= take
            step += 1
    return chunks


def after(before: Refunded, refund_units: dict[str, int], shipping: bool, amount: Decimal) -> Refunded:
    units = dict(before.units)
    for sku, n in refund_units.items():
        units[sku] = units.get(sku, 0) + n
    return Refunded(units, before.shipping or shipping, before.amount + amount)


@given(orders(), st.data())
def test_partial_refunds_add_up_to_the_full_refund_and_each_stays_within_bounds(case, data) -> None:
    order, returned = case
    full = calculate(order, returned, Refunded())
    assert 0 <= full.total <= order.captured
    history = Refunded()
    paid_back = D(0)
    for chunk in parts(data.draw, returned):
        refund = calculate(order, chunk, history)
        assert refund.total >= 0
        assert refund.total <= order.captured - history.amount
        paid_back += refund.total
        history = after(history, refund.units, bool(refund.shipping), refund.total)
    assert paid_back == full.total


@given(orders(), st.integers(0, 100_000).map(lambda c: D(c) / 100))
def test_never_negative_never_above_captured_less_refunded(case, refunded_before) -> None:
    order, returned = case
    refund = calculate(order, returned, Refunded(amount=refunded_before))
    assert D(0) <= refund.total <= max(D(0), order.captured - refunded_before)


def test_an_order_change_refunds_what_it_made_due_back_and_covers_no_units() -> None:
    refund = change_refund("order change c-1 (version 1)", D("20.00"), D("34.95"), Refunded(), "EUR")
    assert (refund.total, refund.units, refund.shipping) == (D("20.00"), {}, D("0.00"))
    assert refund.explanation == ("order change c-1 (version 1): 20.00 EUR due back", "refund: 20.00 EUR")


def test_an_order_change_refund_is_capped_at_what_was_paid_less_what_was_refunded_before() -> None:
    before = Refunded({"A": 1}, False, D("20.00"))
    refund = change_refund("order change c-2 (version 2)", D("20.00"), D("34.95"), before, "EUR")
    assert refund.total == D("14.95")
    assert refund.explanation[-2:] == (
        "capped at 14.95 EUR: 34.95 paid less 20.00 refunded before",
        "refund: 14.95 EUR",
    )
