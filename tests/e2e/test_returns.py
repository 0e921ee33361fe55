"""After delivery, on the real stack: a line of a delivered order comes back through the returns service: RMA and
label, the parcel received and restocked (a waiting backorder released), the refund paid with its calculation, the
customer told at each step, and the books balance. Exchanges: a cheaper one has the difference refunded, a dearer
one is charged it before the new order opens, and one whose charge is refused opens nothing and is refunded."""

import json
import uuid
from decimal import Decimal

from services.returns import domain
from services.returns.answers import ReturnRates
from services.returns.settings import ReturnsSettings
from shared.contracts import topics
from tests.factories import order_document
from tests.returns_steps import (
    ask_return,
    delivered_order,
    exchange_asked,
    exchange_ordered,
    on_hand,
    operator_key,
    return_line,
    return_view,
    returns_api,
    wait_return,
)
from tests.scenario import TopicReader, as_documented, mail_for, mails, new_skus, order_view, parts, seed, wait_status
from tests.waiting import eventually


async def test_one_of_two_delivered_lines_returned_is_restocked_releases_a_backorder_and_is_refunded(http, db) -> None:
    # given a delivered order of two lines, the last unit of each
    kept, returned = new_skus(2, prefix="RET")
    await seed([("ams", kept, 1), ("ams", returned, 1)])
    order_id = await delivered_order(http, db, [(kept, 1), (returned, 1)])
    # and another customer waiting for the returned SKU
    response = await http.post("/v1/orders", json=order_document([(returned, 1)]))
    waiting = response.json()["order_id"]
    await wait_status(http, waiting, {"backordered"})

    # when the customer returns one of the two lines
    response = await ask_return(order_id, [return_line(returned)], request_id=f"req-{uuid.uuid4()}")

    # then it is authorised with an RMA and a label for the cheapest service back to the shipping warehouse
    assert response.status_code == 201, response.text
    authorised = response.json()
    assert authorised["status"] == "authorised" and authorised["rma"].startswith("RMA-")
    settings = ReturnsSettings()
    cheapest = domain.cheapest_label(settings.shipping_rules(), "ams", "NL", 450)
    assert cheapest is not None
    assert authorised["label"] == {**cheapest.model_dump(mode="json"), "weight_grams": 450}
    assert authorised["lines"] == [{"sku": returned, "quantity": 1, "reason": "size.too_small", "received": 0}]

    # and when the parcel reaches the warehouse (the simulator plays it), the unit is received as restock
    received = await wait_return(authorised["return_id"], {"received"})
    assert received["lines"][0]["received"] == 1
    assert [(u["sku"], u["quantity"], u["disposition"], u["expected"]) for u in received["received_units"]] == [
        (returned, 1, "restock", True)
    ]

    # then the unit is back in stock and the waiting order gets it, first come first served
    await wait_status(http, waiting, {"delivered"})
    # and the books balance: received 1 + returned 1 = shipped 2, nothing left on hand or reserved
    assert await on_hand(db, "ams", returned) == (0, 0)
    ledger = await db.fetch(
        "SELECT reference, quantity FROM allocation.adjustments WHERE warehouse_id = 'ams' AND sku = $1"
        " AND kind = 'receipt' ORDER BY applied_at",
        returned,
    )
    assert [r["quantity"] for r in ledger] == [1, 1]
    assert ledger[1]["reference"].startswith(f"return:{authorised['rma']}:")
    # and the kept line stays sold
    assert await on_hand(db, "ams", kept) == (0, 0)

    # and the refund is the price paid for that unit (no fee for a size reason, shipping kept), explained
    refunded = await eventually(
        lambda: return_view(authorised["return_id"]), lambda v: [r["status"] for r in v["refunds"]] == ["succeeded"]
    )
    (refund,) = refunded["refunds"]
    assert refund["amount"] == "10.00" and refund["currency"] == "EUR" and refund["attempts"] == 1
    assert refund["explanation"] == [
        f"{returned}: 1 of 1 units (size.too_small), paid 10.00 EUR = 10.00 EUR",
        "refund: 10.00 EUR",
    ]
    # and the money balances: what was paid (two lines and shipping) less the refund is what the kept line and
    # the shipping cost
    paid = await db.fetchval("SELECT paid FROM returns.orders WHERE order_id = $1", uuid.UUID(order_id))
    assert paid - Decimal(refund["amount"]) == Decimal("10.00") + Decimal("4.95")

    # and the customer was told of the authorisation, the receipt and the refund, once each
    expected = ["confirmed", "delivered", "refunded", "return_authorised", "return_received", "shipped"]
    assert await eventually(lambda: mail_for(order_id), lambda kinds: len(kinds) >= 6) == expected
    (refund_mail,) = mails(order_id, "refunded")
    assert "refund: 10.00 EUR" in parts(refund_mail)["text/plain"]

    # and the order view shows the return's steps, its state and the returned units, the order still delivered
    view = await eventually(lambda: order_view(http, order_id), lambda v: v["refunded"] is not None)
    assert view["status"] == "delivered" and view["return_status"] == "refunded"
    steps = [step["status"] for step in view["timeline"]]
    after_delivery = steps[steps.index("delivered") + 1 :]
    assert after_delivery == ["return_requested", "return_authorised", "return_received", "refunded"]
    assert view["returned"] == {returned: {"asked": 1, "authorised": 1, "received": 1}}
    assert view["refunded"] == "10.00"

    # and the return rate of the returned SKU is one unit back of the two shipped (one per customer)
    async with returns_api(operator_key()) as api:
        rates = await eventually(
            lambda: api.get("/v1/returns/rates", params={"by": "sku", "limit": 1000}),
            lambda r: any(rate["sku"] == returned and rate["shipped"] == 2 for rate in r.json()["rates"]),
        )
    assert {"sku": returned, "shipped": 2, "returned": 1, "rate": 0.5} in as_documented(rates, ReturnRates)["rates"]


async def test_an_exchange_for_another_size_flows_to_delivery_and_the_difference_is_refunded(http, db) -> None:
    # given a delivered order of a size M at 10.00, and size L in stock
    # when the customer exchanges it for a size L at 8.00
    exchange = await exchange_asked(http, db, "8.00")

    # then, once the parcel is back, capture opens the exchange order linked to the original
    exchange_order, detail = await exchange_ordered(http, exchange.order_id)
    assert detail.endswith("; difference 2.00 EUR to refund")
    # and it goes through the normal pipeline to delivery, the size L picked and shipped
    delivered = await wait_status(http, exchange_order, {"delivered"})
    assert delivered["original_order_id"] == exchange.order_id
    assert delivered["ordered"] == {exchange.new_sku: 1} and delivered["shipped"] == {exchange.new_sku: 1}
    # and the difference (10.00 paid, 8.00 the new size) is refunded, once
    view = await eventually(
        lambda: return_view(exchange.return_id), lambda v: [r["status"] for r in v["refunds"]] == ["succeeded"]
    )
    (refund,) = view["refunds"]
    assert refund["amount"] == "2.00" and refund["idempotency_key"] == f"exchange:{exchange.rma}"
    assert refund["explanation"][-1] == "exchanged for 8.00: 2.00 back"
    assert view["charges"] == []
    assert view["exchange"] == {**view["exchange"], "credit": "10.00", "difference": "-2.00", "status": "ordered"}
    # and the original order's return is exchanged, its difference refunded or not
    original = await eventually(lambda: order_view(http, exchange.order_id), lambda v: v["refunded"] is not None)
    assert original["status"] == "delivered" and original["return_status"] == "exchanged"

    # and a channel cannot open an exchange order itself
    forged = order_document([(exchange.new_sku, 1)], original_order_id=exchange.order_id)
    assert (await http.post("/v1/orders", json=forged)).status_code == 403


async def test_a_dearer_exchange_is_charged_the_difference_once_and_only_then_opened_and_delivered(http, db) -> None:
    # given a delivered order of a size M at 10.00
    # when the customer exchanges it for a size L at 13.50
    exchange = await exchange_asked(http, db, "13.50")

    # then, once the parcel is back, the difference is charged on the order's payment, once
    view = await eventually(
        lambda: return_view(exchange.return_id), lambda v: [c["status"] for c in v["charges"]] == ["succeeded"]
    )
    (charge,) = view["charges"]
    assert (charge["amount"], charge["currency"], charge["attempts"]) == ("3.50", "EUR", 1)
    assert charge["idempotency_key"] == f"exchange-charge:{exchange.rma}" and charge["provider_reference"]
    # and capture opens the exchange order paid in full: the returned value and the difference charged
    exchange_order, detail = await exchange_ordered(http, exchange.order_id)
    assert detail.endswith("; difference 3.50 EUR charged")
    payment = await db.fetchrow(
        "SELECT document->'payment'->>'status' AS status, document->'payment'->>'amount' AS amount"
        " FROM capture.orders WHERE order_id = $1",
        uuid.UUID(exchange_order),
    )
    assert (payment["status"], payment["amount"]) == ("paid", "13.50")
    # and it flows through the normal pipeline to delivery
    delivered = await wait_status(http, exchange_order, {"delivered"})
    assert delivered["original_order_id"] == exchange.order_id and delivered["shipped"] == {exchange.new_sku: 1}
    # and nothing is refunded: the returned value paid for the rest
    view = await return_view(exchange.return_id)
    assert view["refunds"] == [] and [c["status"] for c in view["charges"]] == ["succeeded"]
    assert view["exchange"] == {**view["exchange"], "credit": "10.00", "difference": "3.50", "status": "ordered"}
    # and the original order shows its return exchanged, the order still delivered
    original = await order_view(http, exchange.order_id)
    assert original["status"] == "delivered" and original["return_status"] == "exchanged"


async def test_a_dearer_exchange_whose_charge_is_refused_opens_no_order_and_is_refunded_instead(http, db) -> None:
    async with TopicReader(topics.RETURN_EVENTS.name) as events, TopicReader(topics.CHARGE_RESULTS.name) as results:
        # given a delivered order whose card the payment provider will decline
        # when the customer exchanges it for a dearer size and the parcel comes back
        exchange = await exchange_asked(http, db, "13.50", external_id=f"CHARGE-REFUSED-{uuid.uuid4()}")

        # then the charge of the difference is refused, given up at once with the provider's reason, and the
        # exchange with it
        view = await eventually(
            lambda: return_view(exchange.return_id),
            lambda v: v["exchange"] is not None and v["exchange"]["status"] == "charge_failed"
            and [r["status"] for r in v["refunds"]] == ["succeeded"],
        )  # fmt: skip
        found = await eventually(
            lambda: events.bodies_for(exchange.order_id), lambda b: "ReturnRefunded" in [e["type"] for e in b]
        )
        answers = await eventually(results.read, lambda seen: any(exchange.rma.encode() in r.value for r in seen))
    (charge,) = view["charges"]
    assert (charge["status"], charge["attempts"], charge["last_error"]) == ("abandoned", 1, "the card was declined")
    assert charge["provider_reference"] is None
    # and no exchange order is asked for or opened
    kinds = [e["type"] for e in found]
    assert "ExchangeChargeFailed" in kinds and "ExchangeRequested" not in kinds
    exchange_id = view["exchange"]["exchange_id"]
    opened = await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", f"exchange-{exchange_id}")
    assert opened == 0
    # and the returned value is refunded instead, once, saying why
    (refund,) = view["refunds"]
    assert refund["amount"] == "10.00" and refund["idempotency_key"] == f"exchange:{exchange.rma}"
    assert refund["explanation"][0] == (
        "exchange not made: the difference of 3.50 EUR could not be charged (the card was declined)"
    )
    assert refund["explanation"][-1] == "refund: 10.00 EUR"
    # and nothing was taken: the provider only ever refused the charge
    mine = [json.loads(a.value) for a in answers if exchange.rma.encode() in a.value]
    assert {a["outcome"] for a in mine} == {"failed"}
    # and the customer is told, once, and of the refund
    told = await eventually(lambda: mail_for(exchange.order_id), lambda k: "exchange_failed" in k and "refunded" in k)
    assert told.count("exchange_failed") == 1 and told.count("refunded") == 1
    (message,) = mails(exchange.order_id, "exchange_failed")
    text = parts(message)["text/plain"]
    assert "3.50 EUR" in text and "the card was declined" in text and "10.00 EUR" in text
    # and the order view shows the exchange given up, then the refund
    original = await eventually(lambda: order_view(http, exchange.order_id), lambda v: v["return_status"] == "refunded")
    steps = [step["status"] for step in original["timeline"]]
    assert steps[steps.index("return_received") + 1 :] == ["exchange_failed", "refunded"]
    assert original["status"] == "delivered" and original["refunded"] == "10.00"
