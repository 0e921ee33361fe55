"""Refunds and exchange charges with the payment provider (the simulator plays it) on the real stack: a failure is
retried under the same idempotency key and paid once; a refusal is reported, never paid; a receipt sent twice and a
request the provider gets twice pay once; partial receipts add up, never above what was paid; a charge the provider
takes after the exchange was given up is paid back, once."""

import uuid
from decimal import Decimal
from typing import Any

from shared.backbone.kafka import encode
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.local import client
from tests.returns_steps import (
    SETTLED,
    answers_for,
    ask_return,
    delivered_order,
    exchange_asked,
    exchange_ordered,
    parcel_received,
    return_line,
    return_view,
)
from tests.scenario import TopicReader, mail_for, new_skus, restart, seed
from tests.waiting import eventually

FAST_RETRIES = {"OMS_REFUND_RETRY_BASE_SECONDS": "0.2", "OMS_REFUND_SWEEP_SECONDS": "0.2"}


async def refunds_of(return_id: str) -> list[dict[str, Any]]:
    """The return's refunds once the provider has answered each for good."""
    view = await eventually(
        lambda: return_view(return_id), lambda v: v["refunds"] and all(r["status"] in SETTLED for r in v["refunds"])
    )
    return list(view["refunds"])


async def test_a_refund_that_fails_at_the_provider_is_retried_and_paid_once_with_the_shipping(http, db, pipeline):
    # given a delivered order the provider fails to refund twice, and the returns service retrying fast
    (sku,) = new_skus(1, prefix="KEEP-RF")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)], external_id=f"REFUND-FAIL-TWICE-{uuid.uuid4()}")
    returns = pipeline["returns"]
    await restart(returns, FAST_RETRIES)
    try:
        # when the wrong item comes back
        response = await ask_return(order_id, [return_line(sku, reason="wrong_item")])
        assert response.status_code == 201, response.text
        async with TopicReader(topics.REFUND_RESULTS.name) as results:
            await parcel_received("ams", response.json()["rma"], [(sku, 1, "restock")])
            # then the refund is asked three times under one key, and paid on the third
            (refund,) = await refunds_of(response.json()["return_id"])
            answers = await eventually(results.read, lambda seen: len(seen) >= 3)
    finally:
        await restart(returns, {})
    assert refund["status"] == "succeeded" and refund["attempts"] == 3
    assert refund["amount"] == "14.95"  # the unit and the shipping: the wrong item was ours
    assert refund["explanation"][-2:] == ["shipping refunded (wrong_item): 4.95 EUR", "refund: 14.95 EUR"]
    mine = [a.value for a in answers if refund["idempotency_key"].encode() in a.value]
    assert [b'"failed"' in a for a in mine] == [True, True, False]
    assert await eventually(lambda: mail_for(order_id), lambda k: "refunded" in k)


async def test_a_refund_the_provider_refuses_is_abandoned_with_the_reason_and_never_paid(http, db) -> None:
    (sku,) = new_skus(1, prefix="KEEP-RR")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)], external_id=f"REFUND-REFUSED-{uuid.uuid4()}")
    response = await ask_return(order_id, [return_line(sku)])
    async with TopicReader(topics.RETURN_EVENTS.name) as events:
        await parcel_received("ams", response.json()["rma"], [(sku, 1, "restock")])
        (refund,) = await refunds_of(response.json()["return_id"])
        found = await eventually(
            lambda: events.bodies_for(order_id), lambda b: "RefundAbandoned" in [e["type"] for e in b]
        )
    assert refund["status"] == "abandoned" and refund["provider_reference"] is None
    assert refund["last_error"] == "the card account is closed"
    abandoned = next(e for e in found if e["type"] == "RefundAbandoned")["payload"]
    assert abandoned["reason"] == "the card account is closed" and abandoned["amount"] == refund["amount"]
    assert "refunded" not in mail_for(order_id)


async def test_receipts_and_requests_repeated_pay_once_and_partial_refunds_add_up_to_what_was_paid(http, db) -> None:
    # given a delivered order of two units returned as no longer needed (10% restocking fee)
    (sku,) = new_skus(1, prefix="KEEP-RP")
    await seed([("ams", sku, 2)])
    order_id = await delivered_order(http, db, [(sku, 2)], unit_price="9.99")
    response = await ask_return(order_id, [return_line(sku, 2, reason="no_longer_needed")])
    rma, return_id = response.json()["rma"], response.json()["return_id"]

    async with TopicReader(topics.REFUND_RESULTS.name) as results:
        # when the units come back in two parcels, the first receipt sent twice
        first = await parcel_received("ams", rma, [(sku, 1, "restock")])
        await parcel_received("ams", rma, [(sku, 1, "restock")], receipt=first)
        (paid_first,) = await refunds_of(return_id)
        # and the provider gets the first refund's request once more (a redelivery)
        again = ev.RefundRequested(
            refund_id=uuid.UUID(paid_first["refund_id"]),
            order_id=uuid.UUID(order_id),
            order_reference="webshop:again",
            idempotency_key=paid_first["idempotency_key"],
            amount=Decimal(paid_first["amount"]),
            currency="EUR",
            attempt=2,
        )
        envelope = encode(wrap(again, order_id=uuid.UUID(order_id)))
        await client.publish(topics.REFUND_REQUESTS.name, [(order_id, envelope)])
        # and the second parcel arrives
        await parcel_received("ams", rma, [(sku, 1, "restock")])
        refunds = await eventually(lambda: refunds_of(return_id), lambda r: len(r) == 2)
        key = paid_first["idempotency_key"]
        answers = await eventually(lambda: answers_for(results, key), lambda found: len(found) >= 2)

    # then each receipt was refunded once, the repeated request answered with the same payment
    assert {a["provider_reference"] for a in answers} == {paid_first["provider_reference"]}
    assert [r["status"] for r in refunds] == ["succeeded", "succeeded"]
    # and the parts add up to the whole: 2 x 9.99 = 19.98 less 10% (2.00) = 17.98, as 8.99 + 8.99
    assert [r["amount"] for r in refunds] == ["8.99", "8.99"]
    assert sum(Decimal(r["amount"]) for r in refunds) <= await db.fetchval(
        "SELECT paid FROM returns.orders WHERE order_id = $1", uuid.UUID(order_id)
    )
    assert await db.fetchval("SELECT count(*) FROM returns.refunds WHERE order_id = $1", uuid.UUID(order_id)) == 2


async def test_a_charge_that_fails_at_the_provider_is_retried_under_one_key_and_taken_once(http, db, pipeline) -> None:
    # given the returns service retrying fast, and an order the provider fails to charge twice
    returns = pipeline["returns"]
    await restart(returns, FAST_RETRIES)
    try:
        async with TopicReader(topics.CHARGE_RESULTS.name) as results:
            # when its size M at 10.00 is exchanged for a size L at 13.50 and comes back
            exchange = await exchange_asked(http, db, "13.50", external_id=f"CHARGE-FAIL-TWICE-{uuid.uuid4()}")
            # then the difference is asked three times under one key, and taken on the third
            view = await eventually(
                lambda: return_view(exchange.return_id), lambda v: [c["status"] for c in v["charges"]] == ["succeeded"]
            )
            key = f"exchange-charge:{exchange.rma}"
            answers = await eventually(lambda: answers_for(results, key), lambda found: len(found) >= 3)
    finally:
        await restart(returns, {})
    (charge,) = view["charges"]
    assert (charge["amount"], charge["attempts"], charge["idempotency_key"]) == ("3.50", 3, key)
    assert [a["outcome"] for a in answers] == ["failed", "failed", "succeeded"]
    assert {a["charge_id"] for a in answers} == {charge["charge_id"]}
    # and the exchange order is opened once it is paid
    _, detail = await exchange_ordered(http, exchange.order_id)
    assert detail.endswith("; difference 3.50 EUR charged")


async def test_a_charge_taken_after_the_exchange_was_given_up_is_paid_back_once(http, db) -> None:
    # given a dearer exchange given up because the provider refused its difference (the returned value refunded)
    exchange = await exchange_asked(http, db, "13.50", external_id=f"CHARGE-REFUSED-{uuid.uuid4()}")
    view = await eventually(
        lambda: return_view(exchange.return_id), lambda v: [r["status"] for r in v["refunds"]] == ["succeeded"]
    )
    (charge,) = view["charges"]
    assert charge["status"] == "abandoned"

    # when the provider reports, late and twice, that it took the difference after all
    late = {
        "outcome": "succeeded", "charge_id": charge["charge_id"], "idempotency_key": charge["idempotency_key"],
        "amount": "3.50", "provider_reference": f"ch_late_{uuid.uuid4().hex[:8]}",
        "occurred_at": "2026-12-01T10:00:00Z",
    }  # fmt: skip
    await client.publish(topics.CHARGE_RESULTS.name, [(charge["idempotency_key"], late)] * 2)

    # then the charge is paid back, once, under its own key, and the exchange stays given up
    view = await eventually(
        lambda: return_view(exchange.return_id),
        lambda v: len(v["refunds"]) == 2 and all(r["status"] == "succeeded" for r in v["refunds"]),
    )
    back = next(r for r in view["refunds"] if r["idempotency_key"] == f"charge-back:{exchange.rma}")
    assert back["amount"] == "3.50"
    assert [c["status"] for c in view["charges"]] == ["succeeded"] and view["exchange"]["status"] == "charge_failed"
    # and it is not counted as money of the order: what the order may still have refunded is unchanged
    covered = await db.fetchval(
        "SELECT sum(amount) FROM returns.refunds WHERE order_id = $1 AND charge_id IS NULL",
        uuid.UUID(exchange.order_id),
    )
    assert covered == Decimal("10.00")
    assert (
        await db.fetchval(
            "SELECT count(*) FROM capture.orders WHERE document->>'original_order_id' = $1", exchange.order_id
        )
        == 0
    )
