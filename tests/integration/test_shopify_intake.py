"""Shopify's orders/create webhook at capture: a correctly signed delivery becomes an order that flows to
delivered, once however often Shopify delivers it; a badly signed one is refused and leaves no trace."""

import base64
import hashlib
import hmac
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.capture.settings import DEVELOPMENT_SHOP, DEVELOPMENT_SHOPIFY_SECRET
from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import TopicReader, mail_for, new_skus, seed, wait_status
from tests.waiting import eventually

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "shopify_orders_create.json"
URL = "/v1/channels/shopify/orders"


def shopify_order(skus: list[str]) -> tuple[str, dict[str, Any]]:
    """The sample orders/create body with a fresh order id, email and this test's SKUs, and the external id
    capture gives it (Shopify's id within the shop)."""
    body = json.loads(SAMPLE.read_text())
    body["id"] = random.randint(10**12, 10**13)
    body["email"] = body["contact_email"] = body["customer"]["email"] = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
    a_house_and_network_of_its_own(body)
    for line, sku in zip((i for i in body["line_items"] if i["sku"]), skus, strict=True):
        line["sku"] = sku
    return f"{DEVELOPMENT_SHOP}:{body['id']}", body


def a_house_and_network_of_its_own(body: dict[str, Any]) -> None:
    """The tests' orders are not one burst from one address and network to the risk rules."""
    body["shipping_address"]["address1"] = f"Prinsengracht {random.randint(1, 10**9)}"
    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    body["browser_ip"] = ip
    if isinstance(body.get("client_details"), dict):
        body["client_details"]["browser_ip"] = ip


def headers(raw: bytes, *, secret: str = DEVELOPMENT_SHOPIFY_SECRET, webhook_id: str | None = None) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": DEVELOPMENT_SHOP,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": "2026-01",
        "X-Shopify-Triggered-At": "2026-03-10T13:22:33.123Z",
    }


async def test_a_signed_orders_create_webhook_flows_to_delivered_once_however_often_delivered(http, db) -> None:
    # given the SKUs of the Shopify order in the catalogue, with stock
    shirt, mug = new_skus(2, prefix="SHOP")
    await seed([("ams", shirt, 5), ("ams", mug, 5)])
    external_id, body = shopify_order([shirt, mug])
    raw = json.dumps(body).encode()
    delivery = headers(raw)

    # when Shopify delivers the webhook, redelivers it, and delivers it again under a new webhook id
    first = await http.post(URL, content=raw, headers=delivery)
    redelivered = await http.post(URL, content=raw, headers=delivery)
    again = await http.post(URL, content=raw, headers=headers(raw))

    # then one order, mapped from Shopify's body, is taken in
    assert first.status_code == 202, first.text
    order_id = first.json()["order_id"]
    assert first.json() == {"order_id": order_id, "status": "validated", "duplicate": False}
    assert redelivered.status_code == again.status_code == 202
    # (the order may have moved on between the calls: the repeats report it as it stands)
    for repeat in (redelivered.json(), again.json()):
        assert (repeat["order_id"], repeat["duplicate"]) == (order_id, True)
    rows = await db.fetch(
        "SELECT order_id, document FROM capture.orders WHERE channel = 'shopify' AND external_id = $1", external_id
    )
    assert len(rows) == 1
    document = json.loads(rows[0]["document"])
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in document["lines"]] == [
        (shirt, 2, "22.50"),
        (mug, 1, "12.95"),
    ]
    assert (document["service_level"], document["shipping_price"], document["payment"]["status"]) == (
        "express",
        "9.95",
        "paid",
    )
    assert document["shipping_address"]["postal_code"] == "1016 GV"
    assert (
        await db.fetchval("SELECT count(*) FROM capture.shopify_webhooks WHERE order_id = $1", uuid.UUID(order_id)) == 2
    )

    # and it flows through the pipeline to delivered, the customer mailed once per step
    view = await wait_status(http, order_id, {"delivered"})
    assert [s["status"] for s in view["timeline"]][:2] == ["received", "validated"]
    assert view["timeline"][0]["detail"] == "via shopify"
    mails = await eventually(lambda: mail_for(order_id), lambda kinds: len(kinds) >= 3)
    assert mails == ["confirmed", "delivered", "shipped"]


async def test_a_wrongly_signed_webhook_is_refused_with_401_logged_without_its_body_and_leaves_no_trace(
    http, db
) -> None:
    (sku,) = new_skus(1, prefix="SHOP")
    await seed([("ams", sku, 5)])
    external_id, body = shopify_order([sku, sku])
    raw = json.dumps(body).encode()
    forged = headers(raw, secret="not-the-shop-secret")
    tampered = headers(raw)
    unsigned = {k: v for k, v in headers(raw).items() if k != "X-Shopify-Hmac-Sha256"}
    unknown_shop = {**headers(raw), "X-Shopify-Shop-Domain": "someone-else.myshopify.com"}

    async with (
        TopicReader(topics.ORDERS_VALIDATED.name) as validated,
        TopicReader(topics.ORDERS_REJECTED.name) as rejected,
    ):
        responses = [
            await http.post(URL, content=raw, headers=forged),
            await http.post(URL, content=raw.replace(b"87.90", b"0.01"), headers=tampered),
            await http.post(URL, content=raw, headers=unsigned),
            await http.post(URL, content=raw, headers=unknown_shop),
        ]
        # a genuine order afterwards: once its event is out, anything emitted before it would be too
        marker = (await http.post("/v1/orders", json=order_document([(sku, 1)]))).json()["order_id"]
        await eventually(lambda: validated.bodies_for(marker), bool)
        await rejected.read()

        assert [r.status_code for r in responses] == [401, 401, 401, 401]
        assert responses[0].json() == {"detail": "webhook signature missing or invalid"}
        emitted = [json.loads(r.value) for r in validated.seen + rejected.seen]
        assert not [e for e in emitted if e["payload"]["external_id"] == external_id]

    assert await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", external_id) == 0
    webhook_ids = [h["X-Shopify-Webhook-Id"] for h in (forged, tampered, unsigned, unknown_shop)]
    assert (
        await db.fetchval("SELECT count(*) FROM capture.shopify_webhooks WHERE webhook_id = ANY($1)", webhook_ids) == 0
    )
    log = (LOCAL.state / "logs" / "capture.log").read_text()
    assert f"webhook id '{forged['X-Shopify-Webhook-Id']}'" in log
    assert body["email"] not in log and "Prinsengracht" not in log


async def test_a_webhook_shopify_sent_that_cannot_be_mapped_gets_422_with_reasons_and_is_not_stored(http, db) -> None:
    external_id, body = shopify_order(new_skus(2, prefix="SHOP"))
    body["line_items"][0]["sku"] = None
    body["shipping_address"] = None
    raw = json.dumps(body).encode()

    response = await http.post(URL, content=raw, headers=headers(raw))

    assert response.status_code == 422
    assert response.json()["reasons"] == [
        "shipping_address: missing (nothing to ship to)",
        "line_items[0].sku: missing (the variant has no SKU)",
    ]
    assert await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", external_id) == 0


@pytest.mark.parametrize(
    ("api_version", "prices", "shipping", "charged"),
    [
        ("2019-10", ["93.10", "58.79"], "9.99", "254.98"),
        ("2023-01", ["108.00", "22.50"], "12.50", "179.08"),
        ("2025-01", ["72.00", "5.85"], "0.00", "120.40"),
    ],
)
async def test_a_discounted_order_of_every_api_version_is_validated_at_the_price_paid(
    http, db, api_version: str, prices: list[str], shipping: str, charged: str
) -> None:
    # given the SKUs of the order in the catalogue, and the body Shopify sends under that API version
    skus = new_skus(2, prefix="SHOP")
    await seed([("ams", sku, 5) for sku in skus])
    body = json.loads((SAMPLE.parent / f"shopify_orders_create_{api_version}.json").read_text())
    body["id"] = random.randint(10**12, 10**13)
    body["email"] = body["contact_email"] = body["customer"]["email"] = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
    a_house_and_network_of_its_own(body)
    for line, sku in zip((i for i in body["line_items"] if i["sku"]), skus, strict=True):
        line["sku"] = sku
    raw = json.dumps(body).encode()

    # when Shopify delivers it, signed
    response = await http.post(URL, content=raw, headers={**headers(raw), "X-Shopify-API-Version": api_version})

    # then the paid order is validated, not taken for underpaid, at the prices the customer paid
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "validated"
    document = json.loads(
        await db.fetchval(
            "SELECT document FROM capture.orders WHERE channel = 'shopify' AND external_id = $1",
            f"{DEVELOPMENT_SHOP}:{body['id']}",
        )
    )
    assert [line["unit_price"] for line in document["lines"]] == prices
    assert (document["shipping_price"], document["payment"]["amount"]) == (shipping, charged)
