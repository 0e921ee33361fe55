"""What the returns service's events add to the order view: timeline steps with their details, per-line
returned quantities; the order's status is left as it is."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from services.capture import returns
from shared.contracts import events as ev

ORDER, RETURN = uuid.uuid4(), uuid.uuid4()
LINES = [ev.ReturnLine(sku="A", quantity=1, reason="size.too_small")]
LABEL = ev.ReturnLabel(carrier="parcelnet", service="economy", warehouse_id="ams", weight_grams=450, price=Decimal(4))


def test_a_return_authorised_by_the_policy_is_requested_then_authorised_with_its_rma_and_label() -> None:
    authorised = ev.ReturnAuthorised(
        order_id=ORDER, return_id=RETURN, rma="RMA-000000011", lines=LINES, label=LABEL, expires_at=datetime.now(UTC)
    )
    found = returns.news(authorised)
    assert found == returns.ReturnNews(
        (("return_requested", "A x1"), ("return_authorised", "RMA-000000011: A x1; label parcelnet economy to ams")),
        "authorised",
        {"A": 1},
        authorised=True,
    )
    by_operator = returns.news(authorised.model_copy(update={"decided_by": "operator"}))
    assert by_operator is not None and [name for name, _ in by_operator.steps] == ["return_authorised"]


def test_a_receipt_counts_the_units_received_and_says_what_was_set_aside() -> None:
    received = ev.ReturnReceived(
        order_id=ORDER,
        return_id=RETURN,
        rma="RMA-000000011",
        warehouse_id="ams",
        receipt="R1",
        lines=[ev.ReceivedLine(sku="A", quantity=1, disposition="quarantine")],
        unexpected=[ev.ReceivedLine(sku="Z", quantity=2, disposition="restock")],
        complete=False,
    )
    found = returns.news(received)
    assert found is not None and found.received == {"A": 1} and found.state == "partially_received"
    assert found.steps == (("return_received", "RMA-000000011 at ams; A x1 quarantine; set aside for review: Z x2"),)


def test_refunds_paid_and_abandoned_are_steps_of_their_own() -> None:
    refunded = ev.ReturnRefunded(
        order_id=ORDER, return_id=RETURN, refund_id=uuid.uuid4(), amount=Decimal("10.0000"), currency="EUR",
        explanation=[], provider_reference="re_1", requested_to_refunded_seconds=1.0,
    )  # fmt: skip
    assert returns.news(refunded) == returns.ReturnNews((("refunded", "10.00 EUR"),))
    abandoned = ev.RefundAbandoned(
        order_id=ORDER, return_id=RETURN, refund_id=uuid.uuid4(), amount=Decimal("10"), currency="EUR",
        reason="card closed", attempts=1,
    )  # fmt: skip
    assert returns.news(abandoned) == returns.ReturnNews((("refund_failed", "10.00 EUR: card closed"),))
