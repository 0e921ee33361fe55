"""After delivery, on the real stack: a line of a delivered order comes back through the returns service: RMA and
label, the parcel received and restocked (a waiting backorder released), the refund paid with its calculation, the
customer told at each step, and the books balance."""

import uuid
from decimal import Decimal

from services.returns import domain
from services.returns.settings import ReturnsSettings
from tests.factories import order_document
from tests.returns_steps import (
    ask_return,
    delivered_order,
    on_hand,
    operator_key,
    return_line,
    return_view,
    returns_api,
    wait_return,
)
from tests.scenario import mail_for, mails, new_skus, order_view, parts, seed, wait_status
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

    # and the order view shows the return's steps and the returned units, the order still delivered
    view = await eventually(lambda: order_view(http, order_id), lambda v: v["refunded"] is not None)
    assert view["status"] == "delivered"
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
    assert {"sku": returned, "shipped": 2, "returned": 1, "rate": 0.5} in rates.json()["rates"]


async def test_an_exchange_for_another_size_flows_to_delivery_and_the_difference_is_refunded(http, db) -> None:
    # given a delivered order of a size M at 10.00, and size L in stock
    medium, large = new_skus(2, prefix="EXC")
    await seed([("ams", medium, 1), ("ams", large, 1)])
    order_id = await delivered_order(http, db, [(medium, 1)])

    # when the customer exchanges it for a size L at 8.00
    exchange_for = [{"sku": large, "quantity": 1, "unit_price": "8.00"}]
    response = await ask_return(order_id, [return_line(medium)], resolution="exchange", exchange_for=exchange_for)
    assert response.status_code == 201, response.text
    return_id = response.json()["return_id"]

    # then, once the parcel is back, capture opens the exchange order linked to the original
    original = await eventually(
        lambda: order_view(http, order_id), lambda v: "exchange_ordered" in [s["status"] for s in v["timeline"]]
    )
    detail = next(s["detail"] for s in original["timeline"] if s["status"] == "exchange_ordered")
    exchange_order = detail.split()[2]
    # and it goes through the normal pipeline to delivery, the size L picked and shipped
    delivered = await wait_status(http, exchange_order, {"delivered"})
    assert delivered["original_order_id"] == order_id
    assert delivered["ordered"] == {large: 1} and delivered["shipped"] == {large: 1}
    # and the difference (10.00 paid, 8.00 the new size) is refunded, once
    view = await eventually(
        lambda: return_view(return_id), lambda v: [r["status"] for r in v["refunds"]] == ["succeeded"]
    )
    (refund,) = view["refunds"]
    assert refund["amount"] == "2.00" and refund["idempotency_key"].startswith("exchange:")
    assert refund["explanation"][-1] == "exchanged for 8.00: 2.00 back"
    exchange = await db.fetchrow("SELECT credit, difference FROM returns.exchanges WHERE return_id = $1",
                                 uuid.UUID(return_id))  # fmt: skip
    assert (exchange["credit"], exchange["difference"]) == (Decimal("10.00"), Decimal("-2.00"))

    # and a channel cannot open an exchange order itself
    forged = order_document([(large, 1)], original_order_id=order_id)
    assert (await http.post("/v1/orders", json=forged)).status_code == 403
