"""Which events become which messages, how every kind renders (text and escaped HTML), webhook signing and backoff."""

import hashlib
import hmac
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.notifications import domain, messages
from shared.contracts import events as ev

ORDER = uuid.uuid4()
SHIPMENT = uuid.uuid4()
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & Co'
CUSTOMER = ev.Customer(email="ada@example.com", name="Ada")
ADDRESS = ev.Address(name="Ada", line1="Dam 1", city="Amsterdam", postal_code="1012", country="NL")


def items(**units: int) -> list[ev.ItemQuantity]:
    return [ev.ItemQuantity(sku=sku, quantity=n) for sku, n in units.items()]


def shipped(complete: bool = True, url: str | None = "https://track.example/PN1?lang=en&x=1") -> ev.OrderShipped:
    return ev.OrderShipped(
        order_id=ORDER,
        pick_task_id=SHIPMENT,
        warehouse_id="ams",
        carrier="parcelnet",
        tracking_number="PN1",
        shipped_at=NOW,
        lines=items(A=2),
        promised_delivery=date(2026, 3, 12),
        tracking_url=url,
        order_complete=complete,
    )


def test_capture_and_allocation_outcomes_become_order_level_messages() -> None:
    validated = ev.OrderValidated(
        order_id=ORDER, channel="webshop", external_id="W-1", received_at=NOW, currency="EUR", total="24.95",
        customer=CUSTOMER, ship_to=ADDRESS, service_level="standard", lines=items(A=2),
    )  # fmt: skip
    rejected = ev.OrderRejected(order_id=ORDER, channel="webshop", external_id="W-1", reasons=["r1"], customer=CUSTOMER)
    assert domain.intent_for(validated, {}) == domain.Intent(
        ORDER, "confirmed", {"total": "24.95 EUR", "items": [{"sku": "A", "quantity": 2}]}
    )
    assert domain.intent_for(rejected, {}) == domain.Intent(ORDER, "rejected", {"reasons": ["r1"]})
    unfulfillable = ev.OrderUnfulfillable(order_id=ORDER, reason="no stock, policy reject")
    assert domain.intent_for(unfulfillable, {}) == domain.Intent(
        ORDER, "rejected", {"reasons": ["no stock, policy reject"]}
    )
    backordered = ev.OrderBackordered(order_id=ORDER, reason="no stock", missing=items(A=2))
    assert domain.intent_for(backordered, {"A": 2}) == domain.Intent(
        ORDER, "backordered", {"items": [{"sku": "A", "quantity": 2}]}
    )
    delivered = ev.OrderDelivered(order_id=ORDER, delivered_at=NOW)
    assert domain.intent_for(delivered, {}) == domain.Intent(
        ORDER, "delivered", {"delivered_at": "Tuesday 10 March 2026, 12:30 UTC"}
    )


def test_an_allocation_that_leaves_units_waiting_tells_the_customer_they_are_backordered() -> None:
    allocated = ev.OrderAllocated(
        order_id=ORDER, shipments=[], ship_to=ADDRESS, service_level="standard", backordered=items(B=1)
    )
    intent = domain.intent_for(allocated, {"B": 1})
    assert intent is not None and intent.kind == "backordered"
    assert domain.intent_for(allocated.model_copy(update={"backordered": []}), {}) is None


def test_a_shipment_is_shipped_when_it_completes_the_order_else_partially_shipped_keyed_by_shipment() -> None:
    complete = domain.intent_for(shipped(), {})
    assert complete is not None
    assert (complete.kind, complete.shipment_key) == ("shipped", str(SHIPMENT))
    assert complete.facts["tracking_url"] == "https://track.example/PN1?lang=en&x=1"
    assert complete.facts["promised_delivery"] == "Thursday 12 March 2026"
    assert domain.intent_for(shipped(complete=False), {}).kind == "partially_shipped"  # type: ignore[union-attr]
    assert domain.intent_for(shipped(), {"B": 1}).kind == "partially_shipped"  # type: ignore[union-attr]


def test_only_web_links_are_put_in_a_message() -> None:
    for url in ("javascript:alert(1)", "data:text/html,x", None):
        intent = domain.intent_for(shipped(url=url), {})
        assert intent is not None and intent.facts["tracking_url"] is None


def test_delivery_exceptions_are_per_shipment_and_cancellations_per_cancelled_lines() -> None:
    exception = ev.DeliveryException(
        order_id=ORDER, pick_task_id=SHIPMENT, carrier="parcelnet", tracking_number="PN1", detail="refused",
        occurred_at=NOW,
    )  # fmt: skip
    intent = domain.intent_for(exception, {})
    assert intent == domain.Intent(
        ORDER, "delivery_exception", {"carrier": "parcelnet", "tracking_number": "PN1", "detail": "refused"},
        str(SHIPMENT),
    )  # fmt: skip
    whole = domain.intent_for(ev.OrderCancelled(order_id=ORDER, reason="customer request"), {})
    assert whole == domain.Intent(ORDER, "cancelled", {"reason": "customer request", "items": None}, "")
    part = domain.intent_for(ev.OrderCancelled(order_id=ORDER, lines=items(B=1, A=1), reason="r"), {})
    assert part is not None and part.shipment_key == "lines:A=1,B=1"


def test_an_exchange_whose_difference_could_not_be_charged_is_told_once_per_exchange_with_the_refund() -> None:
    exchange = uuid.uuid4()
    failed = ev.ExchangeChargeFailed(
        order_id=ORDER, return_id=uuid.uuid4(), exchange_id=exchange, charge_id=uuid.uuid4(), amount="3.5",
        currency="EUR", reason="the card was declined", attempts=1, refunded="10",
    )  # fmt: skip
    assert domain.intent_for(failed, {}) == domain.Intent(
        ORDER,
        "exchange_failed",
        {"amount": "3.50 EUR", "reason": "the card was declined", "refunded": "10.00 EUR"},
        str(exchange),
    )
    rendered = messages.render("exchange_failed", ORDER, str(exchange), {"name": "Ada", "reference": "W-1"},
                               domain.intent_for(failed, {}).facts)  # type: ignore[union-attr]  # fmt: skip
    assert "3.50 EUR" in rendered.text and "the card was declined" in rendered.text and "10.00 EUR" in rendered.text


def test_the_refund_of_an_order_change_is_told_once_per_refund_with_how_it_was_worked_out() -> None:
    refund = uuid.uuid4()
    refunded = ev.ChangeRefunded(
        order_id=ORDER, change_id="c-1", refund_id=refund, amount="20", currency="EUR",
        explanation=["order change c-1 (version 1): 20.00 EUR due back", "refund: 20.00 EUR"],
        provider_reference="re_1",
    )  # fmt: skip
    intent = domain.intent_for(refunded, {})
    assert intent == domain.Intent(
        ORDER, "change_refunded", {"amount": "20.00 EUR", "explanation": list(refunded.explanation)}, str(refund)
    )
    rendered = messages.render("change_refunded", ORDER, str(refund), {"name": "Ada", "reference": "W-1"},
                               intent.facts)  # fmt: skip
    assert "20.00 EUR" in rendered.subject and "changed" in rendered.text and "returned" not in rendered.text


def test_an_order_cancelled_on_hold_is_told_why_in_the_words_given_never_which_checks() -> None:
    customer = ev.Customer(email="ada@example.test", name="Ada")
    cancelled = ev.HeldOrderCancelled(
        order_id=ORDER, channel="webshop", external_id="W-1", customer=customer,
        reason="the checks your order needs could not be completed within 72 hours", expired=True, holds=["fraud"],
    )  # fmt: skip
    intent = domain.intent_for(cancelled, {})
    assert intent == domain.Intent(ORDER, "hold_cancelled", {"reason": cancelled.reason, "expired": True}, "")
    rendered = messages.render("hold_cancelled", ORDER, "", {"name": "Ada", "reference": "W-1"}, intent.facts)
    assert "could not be completed within 72 hours" in rendered.text and "fraud" not in rendered.text


def test_events_that_concern_no_customer_make_no_message() -> None:
    assert domain.intent_for(ev.CancellationRefused(order_id=ORDER, reason="packed"), {}) is None
    assert domain.intent_for(ev.OrderBackordered(order_id=ORDER, reason="r", missing=[]), {}) is None


# ---- rendering ----

FACTS: dict[str, dict[str, Any]] = {
    "confirmed": {"total": "24.95 EUR", "items": [{"sku": "A", "quantity": 2}]},
    "backordered": {"items": [{"sku": HOSTILE, "quantity": 1}]},
    "partially_shipped": {
        "carrier": HOSTILE, "tracking_number": "PN1", "tracking_url": "https://t.example/?a=1&b=2",
        "promised_delivery": "Thursday 12 March 2026", "items": [], "still_to_come": [{"sku": "B", "quantity": 1}],
    },
    "shipped": {
        "carrier": HOSTILE, "tracking_number": "PN1", "tracking_url": "https://t.example/?a=1&b=2",
        "promised_delivery": "Thursday 12 March 2026", "items": [{"sku": "A", "quantity": 2}], "still_to_come": [],
    },
    "delivered": {"delivered_at": "Tuesday 10 March 2026, 12:30 UTC"},
    "cancelled": {"reason": HOSTILE, "items": None},
    "delivery_exception": {"carrier": "parcelnet", "tracking_number": "PN1", "detail": HOSTILE},
    "rejected": {"reasons": [HOSTILE, "payment is pending"]},
    "return_authorised": {
        "rma": "RMA-000000011", "items": [{"sku": HOSTILE, "quantity": 1}], "carrier": "parcelnet",
        "service": "economy", "warehouse_id": "ams", "expires_on": "Friday 01 January 2027",
    },
    "return_rejected": {"items": [{"sku": "A", "quantity": 1}], "reasons": [HOSTILE]},
    "return_received": {
        "rma": "RMA-000000011", "items": [{"sku": HOSTILE, "quantity": 1}], "set_aside": [], "complete": True,
    },
    "return_closed": {"rma": "RMA-000000011", "reason": HOSTILE},
    "refunded": {"amount": "13.50 EUR", "explanation": [HOSTILE, "refund: 13.50 EUR"]},
    "exchange_failed": {"amount": "3.50 EUR", "reason": HOSTILE, "refunded": "10.00 EUR"},
    "change_refunded": {"amount": "20.00 EUR", "explanation": [HOSTILE, "refund: 20.00 EUR"]},
    "hold_cancelled": {"reason": HOSTILE, "expired": True},
    "changed": {
        "version": 1, "items": [{"sku": HOSTILE, "quantity": 3}], "waiting": [{"sku": "A", "quantity": 1}],
        "not_added": [], "service_level": "express", "ships_to": "Lyon, FR",
    },
}  # fmt: skip


def test_every_kind_has_a_text_and_an_html_template() -> None:
    assert set(FACTS) == set(domain.KINDS)
    for kind in domain.KINDS:
        assert (messages.TEMPLATES / f"{kind}.txt").is_file() and (messages.TEMPLATES / f"{kind}.html").is_file()


@pytest.mark.parametrize("kind", domain.KINDS)
def test_every_kind_renders_text_and_escaped_html(kind: str) -> None:
    recipient = {"name": "Ada <b>Lovelace</b>", "reference": "#1042\r\nBcc: evil@example.com"}
    rendered = messages.render(kind, ORDER, "", recipient, FACTS[kind])
    assert "\n" not in rendered.subject and "\r" not in rendered.subject and rendered.subject
    assert "#1042" in rendered.subject
    assert "Hello Ada <b>Lovelace</b>," in rendered.text  # text is sent as text/plain: as written
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in rendered.html
    assert "<b>" not in rendered.html and "<script>" not in rendered.html
    assert str(ORDER) in rendered.text and str(ORDER) in rendered.html
    if kind not in ("confirmed", "delivered"):
        assert HOSTILE in rendered.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in rendered.html


def test_the_shipped_message_has_the_tracking_link_and_the_promised_date_in_both_parts() -> None:
    rendered = messages.render("shipped", ORDER, str(SHIPMENT), {"name": "Ada", "reference": "W-1"}, FACTS["shipped"])
    assert "https://t.example/?a=1&b=2" in rendered.text
    assert '<a href="https://t.example/?a=1&amp;b=2">' in rendered.html
    assert "Thursday 12 March 2026" in rendered.text and "Thursday 12 March 2026" in rendered.html


def test_a_missing_fact_is_an_error_not_a_blank() -> None:
    with pytest.raises(Exception, match="tracking_number"):
        messages.render("shipped", ORDER, "", {"name": "Ada", "reference": "W-1"}, {"carrier": "x"})


def test_message_ids_are_stable_per_order_kind_and_shipment() -> None:
    first = messages.message_id(ORDER, "shipped", "s1")
    assert first == messages.message_id(ORDER, "shipped", "s1")
    assert len({first, messages.message_id(ORDER, "shipped", "s2"), messages.message_id(ORDER, "delivered", "")}) == 3


# ---- webhooks and backoff ----


def test_the_webhook_body_is_stable_json_and_the_signature_is_the_hex_hmac_of_those_bytes() -> None:
    message = {
        "message_id": "<m@oms.local>", "order_id": ORDER, "kind": "shipped", "shipment_key": str(SHIPMENT),
        "subject": "s", "text": "t", "facts": {"b": 1, "a": 2},
    }  # fmt: skip
    body = domain.webhook_body(message, "shopify", "#1042")
    assert body == domain.webhook_body(dict(reversed(message.items())), "shopify", "#1042")
    document = json.loads(body)
    assert document["order_id"] == str(ORDER) and document["sales_channel"] == "shopify"
    assert document["facts"] == {"a": 2, "b": 1} and "email" not in body.decode()
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert domain.signature(body, "k") == f"sha256={expected}"


def test_retries_back_off_exponentially_up_to_a_cap() -> None:
    assert [domain.retry_delay(n, 2.0, 30.0) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_rendering_a_message_looks_at_no_file_once_its_templates_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the templates of a kind, loaded by a first message
    facts = {"total": "24.95 EUR", "items": [{"sku": "A", "quantity": 2}]}
    first = messages.render("confirmed", ORDER, "", {"name": "Ada", "reference": "W-1"}, facts)

    # when another message of that kind is rendered while the file system cannot be asked
    def no_files(*_: object, **__: object) -> float:
        raise AssertionError("a template file was looked at again")

    monkeypatch.setattr("os.path.getmtime", no_files)
    monkeypatch.setattr("os.stat", no_files)
    again = messages.render("confirmed", ORDER, "", {"name": "Ada", "reference": "W-1"}, facts)
    # then it renders as the first did
    assert again == first
