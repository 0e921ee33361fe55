"""What the returns service's events add to the order view: timeline steps with their details, per-line
returned quantities, the return's state; the order's status is left as it is. How an exchange order is paid."""

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
    assert returns.news(refunded) == returns.ReturnNews(
        (("refunded", "10.00 EUR"),), "refunded", keeps=("exchanged", "partially_received")
    )
    abandoned = ev.RefundAbandoned(
        order_id=ORDER, return_id=RETURN, refund_id=uuid.uuid4(), amount=Decimal("10"), currency="EUR",
        reason="card closed", attempts=1,
    )  # fmt: skip
    assert returns.news(abandoned) == returns.ReturnNews((("refund_failed", "10.00 EUR: card closed"),))


def exchange(difference: str, charge_reference: str | None = None) -> ev.ExchangeRequested:
    return ev.ExchangeRequested(
        order_id=ORDER, return_id=RETURN, exchange_id=uuid.uuid4(), credit=Decimal("10.00"),
        lines=[ev.PricedLine(sku="L", quantity=1, unit_price=Decimal("10.00") + Decimal(difference))],
        difference=Decimal(difference), currency="EUR", charge_reference=charge_reference,
    )  # fmt: skip


def test_an_exchange_order_is_paid_when_the_returned_value_covers_it_or_the_difference_was_charged() -> None:
    original = ev.SubmittedOrder.model_validate(
        {
            "channel": "webshop", "external_id": "W-1", "placed_at": "2026-12-01T10:00:00+00:00", "currency": "EUR",
            "customer": {"email": "ada@example.com", "name": "Ada"}, "service_level": "standard",
            "shipping_address": {"name": "Ada", "line1": "Dam 1", "city": "Amsterdam", "postal_code": "1012",
                                 "country": "NL"},
            "lines": [{"sku": "M", "quantity": 1, "unit_price": "10.00"}], "shipping_price": "4.95",
            "payment": {"status": "paid", "amount": "14.95"},
        }
    )  # fmt: skip
    at = datetime.now(UTC)
    charged = returns.exchange_order(original, exchange("3.50", "ch_1"), at)
    assert charged.payment == ev.Payment(status="paid", amount=Decimal("13.50"))
    assert charged.original_order_id == ORDER and charged.shipping_price == 0
    assert returns.exchange_order(original, exchange("-2.00"), at).payment.status == "paid"
    # an exchange announced before charges existed: the difference is only authorised
    assert returns.exchange_order(original, exchange("3.50"), at).payment.status == "authorized"


def test_the_original_order_says_how_the_exchange_was_settled() -> None:
    new_order = uuid.uuid4()
    charged = returns.exchange_ordered(new_order, "validated", exchange("3.50", "ch_1"))
    assert charged == f"exchange order {new_order} (validated); difference 3.50 EUR charged"
    refunded = returns.exchange_ordered(new_order, "validated", exchange("-2.00"))
    assert refunded == f"exchange order {new_order} (validated); difference 2.00 EUR to refund"
    assert returns.exchange_ordered(new_order, "validated", exchange("0")) == f"exchange order {new_order} (validated)"


def test_an_exchange_whose_difference_was_refused_is_a_step_and_a_state_of_its_own() -> None:
    failed = ev.ExchangeChargeFailed(
        order_id=ORDER, return_id=RETURN, exchange_id=uuid.uuid4(), charge_id=uuid.uuid4(), amount=Decimal("3.5"),
        currency="EUR", reason="the card was declined", attempts=1, refunded=Decimal("10"),
    )  # fmt: skip
    assert returns.news(failed) == returns.ReturnNews(
        (("exchange_failed", "3.50 EUR could not be charged: the card was declined; 10.00 EUR refunded instead"),),
        "exchange_failed",
    )
