"""Credit limits on the real stack: an order that would take its business account over its credit limit goes on a
credit hold, unseen by allocation, and flows once a payment (or a cancellation) brings the account's exposure down;
a payment reported twice counts once. The accounts are new ones, so the reference rules' default group (new-trade,
1,000 EUR) is their limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.contracts import topics
from tests.e2e.test_holds import submit, unseen_downstream
from tests.factories import order_document
from tests.local import client
from tests.scenario import mail_for, new_skus, order_view, seed, wait_status
from tests.waiting import eventually


def on_account(account: str, sku: str, unit_price: str) -> dict[str, Any]:
    """One unit bought on the account, to be paid by invoice (4.95 shipping on top of the unit)."""
    document = order_document([(sku, 1)], unit_price=unit_price, payment_status="pending")
    document["customer"]["account"] = account
    return document


async def pay(document: dict[str, Any], payment_id: str, amount: str) -> None:
    payment = {
        "channel": document["channel"],
        "external_id": document["external_id"],
        "payment_id": payment_id,
        "amount": amount,
        "currency": "EUR",
        "received_at": datetime.now(UTC).isoformat(),
    }
    key = f"{document['channel']}:{document['external_id']}"
    await client.publish(topics.PAYMENTS_RECEIVED.name, [(key, payment)])


async def test_an_order_over_the_credit_limit_is_held_and_flows_once_an_earlier_invoice_is_paid(
    http: httpx.AsyncClient, db: Any
) -> None:
    (sku,) = new_skus(1, prefix="CREDIT")
    await seed([("ams", sku, 10)])
    account = f"T-{uuid.uuid4().hex[:12]}"
    # given an account of 1,000 EUR that owes 600.00 for an order on invoice
    first_document = on_account(account, sku, "595.05")
    first = await submit(http, first_document)
    assert first["status"] == "validated"

    # when it orders for 500.00 more
    second = (await submit(http, on_account(account, sku, "495.05")))["order_id"]

    # then that order waits on a credit hold saying why, and allocation never hears of it
    held = await order_view(http, second)
    assert held["status"] == "on_hold"
    assert [(h["hold_type"], h["state"], h["placed_by"], h["reason"]) for h in held["holds"]] == [
        (
            "credit",
            "held",
            "credit check",
            "500.00 EUR would take the account's exposure from 600.00 to 1100.00, over its credit limit of 1000",
        )
    ]
    await unseen_downstream(db, [second])

    # when the first order's invoice is paid, and the payment is reported twice
    payment_id = f"PAY-{uuid.uuid4()}"
    await pay(first_document, payment_id, "600.00")
    await pay(first_document, payment_id, "600.00")

    # then the held order is released by the credit check and delivered; the customer hears it confirmed first
    delivered = await wait_status(http, second, {"delivered"}, timeout=90)
    assert [s["status"] for s in delivered["timeline"]][:4] == ["received", "on_hold", "hold_released", "validated"]
    assert [(h["state"], h["released_by"]) for h in delivered["holds"]] == [("released", "credit check")]
    kinds = await eventually(lambda: mail_for(second), lambda k: "delivered" in k, timeout=60)
    assert kinds == ["confirmed", "delivered", "shipped"]
    # and the payment counted once, in the first order's timeline
    await client.wait_caught_up("oms-capture", [topics.PAYMENTS_RECEIVED.name])
    view = await order_view(http, first["order_id"])
    assert (view["account"], view["paid"]) == (account, "600.0000")
    assert [s["detail"] for s in view["timeline"] if s["status"] == "payment_received"] == ["600.00 EUR received"]


async def test_cancelling_an_open_order_lets_the_accounts_held_order_flow(http: httpx.AsyncClient, db: Any) -> None:
    (sku,) = new_skus(1, prefix="CREDIT")  # no stock: the first order waits as a backorder, still owed
    await client.publish_products([sku])
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    account = f"T-{uuid.uuid4().hex[:12]}"
    # given an open order of 900.00 on an account of 1,000, and a second of 300.00 on credit hold
    first = (await submit(http, on_account(account, sku, "895.05")))["order_id"]
    await wait_status(http, first, {"backordered"})
    second = (await submit(http, on_account(account, sku, "295.05")))["order_id"]
    assert (await order_view(http, second))["holds"][0]["hold_type"] == "credit"

    # when the first order is cancelled
    cancelled = await http.post(f"/v1/orders/{first}/cancel", json={"reason": "customer changed their mind"})
    assert cancelled.status_code == 202, cancelled.text
    await wait_status(http, first, {"cancelled"})

    # then the second is released by the credit check and goes on to allocation (a backorder: no stock)
    after = await wait_status(http, second, {"backordered"})
    assert [(h["state"], h["released_by"]) for h in after["holds"]] == [("released", "credit check")]
