"""When capture passes a cancel request on, refuses it (409) or finds it does not fit the order (422)."""

import pytest

from services.capture import cancellation
from services.capture.lifecycle import Progress
from shared.contracts.events import ItemQuantity


def lines(**units: int) -> list[ItemQuantity]:
    return [ItemQuantity(sku=sku, quantity=n) for sku, n in units.items()]


def order(status: str = "allocated", **kwargs: object) -> Progress:
    return Progress(status, {"A": 2, "B": 1}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["validated", "backordered", "allocated"])
def test_before_shipment_a_whole_order_cancel_goes_on(status: str) -> None:
    assert cancellation.review(order(status), None) == cancellation.Review("accepted")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("shipped", "the order has shipped and can no longer be cancelled"),
        ("delivered", "the order was delivered and can no longer be cancelled"),
        ("exception", "the order has shipped (it is with the carrier) and can no longer be cancelled"),
        ("cancelled", "the order is already cancelled"),
        ("rejected", "the order was rejected; there is nothing to cancel"),
    ],
)
def test_after_shipment_or_at_the_end_it_is_refused_with_a_clear_reason(status: str, reason: str) -> None:
    assert cancellation.review(order(status), None) == cancellation.Review("refused", (reason,))
    assert cancellation.review(order(status), lines(A=1)).verdict == "refused"


def test_a_partly_shipped_order_can_only_cancel_lines_not_shipped() -> None:
    part = order("partially_shipped", shipped={"A": 2})
    assert cancellation.review(part, None) == cancellation.Review(
        "refused", ("part of the order has shipped; name the lines still to cancel",)
    )
    assert cancellation.review(part, lines(B=1)).verdict == "accepted"
    assert cancellation.review(part, lines(A=1)) == cancellation.Review("refused", ("A: 2 of 2 have shipped",))


def test_partial_cancellation_within_what_was_ordered_goes_on() -> None:
    assert cancellation.review(order(), lines(A=1)).verdict == "accepted"
    assert cancellation.review(order(), lines(A=2, B=1)).verdict == "accepted"
    assert cancellation.review(order(), [*lines(A=1), *lines(A=1)]).verdict == "accepted"  # same SKU twice adds up


def test_lines_the_order_does_not_have_or_more_than_left_are_invalid_with_every_reason() -> None:
    review = cancellation.review(order(cancelled={"B": 1}), [*lines(A=3, B=1, C=1)])
    assert review == cancellation.Review(
        "invalid",
        ("A: cancel 3, only 2 ordered", "B: cancel 1, only 0 left (1 already cancelled)", "C: not in this order"),
    )
    assert cancellation.review(order(), [*lines(A=2), *lines(A=1)]).reasons == ("A: cancel 3, only 2 ordered",)


def test_the_same_request_has_the_same_fingerprint_whatever_the_line_order() -> None:
    assert cancellation.fingerprint(None) == "whole-order"
    same = cancellation.fingerprint(lines(A=1, B=1))
    assert same == cancellation.fingerprint(lines(B=1, A=1))
    assert same != cancellation.fingerprint(lines(A=1))
    assert cancellation.fingerprint(lines(A=1)) != cancellation.fingerprint(lines(A=2))
