"""Holds, typed and stackable: releasing some leaves the rest, the last one lets the order flow; a hold past its
type's time limit is overdue; an order on hold is cancelled whole or not at all; the customer is never told which
checks held it."""

from datetime import UTC, datetime, timedelta

from services.capture import cancellation, holds
from services.capture.lifecycle import Progress
from shared.contracts.events import HoldType, ItemQuantity

AT = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
LIMITS: dict[HoldType, timedelta] = {
    "fraud": timedelta(hours=72),
    "address": timedelta(hours=48),
    "payment": timedelta(hours=24),
}


def test_releasing_one_of_two_holds_leaves_the_other_and_the_order_waits() -> None:
    found = holds.release(["address", "fraud"], ["fraud"])
    assert (found.released, found.remaining, found.not_held) == (("fraud",), ("address",), ())
    assert not found.order_flows


def test_releasing_the_last_hold_or_every_hold_lets_the_order_flow() -> None:
    assert holds.release(["fraud"], ["fraud"]).order_flows
    everything = holds.release(["address", "fraud"], None)
    assert everything.released == ("address", "fraud") and everything.order_flows


def test_releasing_a_hold_the_order_does_not_have_is_named_and_releases_nothing_else() -> None:
    found = holds.release(["fraud"], ["payment", "fraud"])
    assert found.not_held == ("payment",) and not found.order_flows


def test_a_hold_is_overdue_from_its_own_types_limit_and_the_customer_is_told_only_the_time() -> None:
    since = holds.overdue_since(LIMITS, AT)
    assert since["payment"] == AT - timedelta(hours=24) and since["fraud"] == AT - timedelta(hours=72)
    reason = holds.expiry_reason(LIMITS, ["fraud", "payment"])
    assert reason == "the checks your order needs could not be completed within 24 hours"
    assert "fraud" not in reason


def test_an_order_on_hold_is_cancelled_whole_not_in_part() -> None:
    on_hold = Progress("on_hold", {"A": 2})
    assert cancellation.review(on_hold, None).verdict == "accepted"
    part = cancellation.review(on_hold, [ItemQuantity(sku="A", quantity=1)])
    assert part.verdict == "refused" and part.reasons == ("the order is on hold: cancel it whole, or release it first",)


def test_the_holds_are_described_by_type_with_their_reasons() -> None:
    assert holds.describe({"fraud": "6 orders", "address": "risky"}) == "address hold: risky; fraud hold: 6 orders"
