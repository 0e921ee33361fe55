"""Every caller of the HTTP APIs is authenticated: a channel's key submits, reads and cancels its own channel's
orders only, an operator's key reads and cancels any order and reads the services' views, a revoked key is
refused within seconds, each key is held to its rate, and Shopify order ids are namespaced by the shop."""

import base64
import hashlib
import hmac
import json
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local import processes
from shared.backbone import auth
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import new_skus, seed
from tests.waiting import eventually

SHOPIFY_SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "shopify_orders_create.json"


async def issued(db, role: auth.Role, channel: str | None, rate: int | None = None) -> auth.IssuedKey:
    async with db.acquire() as conn:
        return await auth.issue(conn, role, channel, "test", rate)


def bearer(key: auth.IssuedKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.token}"}


@pytest.fixture
async def capture(pipeline):
    async with httpx.AsyncClient(base_url=LOCAL.http_url("capture"), timeout=30) as client:
        yield client


async def test_orders_are_refused_without_a_valid_key_and_with_another_channels_key(capture, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    webshop, marketplace = await issued(db, "channel", "webshop"), await issued(db, "channel", "marketplace")
    operator = await issued(db, "operator", None)
    document = order_document([(sku, 1)], channel="webshop")

    # a missing, malformed or made-up key is 401 and says how to authenticate
    made_up = bearer(auth.new_key())
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer nope"}, made_up):
        refused = await capture.post("/v1/orders", json=document, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.headers["www-authenticate"] == "Bearer"
    # the marketplace's key may not submit a webshop order, nor may an operator's key submit at all
    assert (await capture.post("/v1/orders", json=document, headers=bearer(marketplace))).status_code == 403
    assert (await capture.post("/v1/orders", json=document, headers=bearer(operator))).status_code == 403
    # nothing of it was stored
    assert await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", document["external_id"]) == 0

    # the webshop's own key is accepted
    accepted = await capture.post("/v1/orders", json=document, headers=bearer(webshop))
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["order_id"]

    # only the webshop's key and an operator's read or cancel it
    assert (await capture.get(f"/v1/orders/{order_id}", headers=bearer(marketplace))).status_code == 403
    assert (await capture.post(f"/v1/orders/{order_id}/cancel", headers=bearer(marketplace))).status_code == 403
    assert (await capture.get(f"/v1/orders/{order_id}")).status_code == 401
    assert (await capture.get(f"/v1/orders/{order_id}", headers=bearer(webshop))).json()["order_id"] == order_id
    assert (await capture.get(f"/v1/orders/{order_id}", headers=bearer(operator))).status_code == 200
    cancelled = await capture.post(f"/v1/orders/{order_id}/cancel", headers=bearer(webshop))
    assert cancelled.status_code == 202, cancelled.text


async def test_keys_are_stored_as_digests_and_a_revoked_key_is_refused_within_seconds(capture, db) -> None:
    key = await issued(db, "channel", "webshop")
    stored = await db.fetchrow("SELECT * FROM auth.api_keys WHERE key_id = $1", key.key_id)
    assert bytes(stored["secret_sha256"]) == hashlib.sha256(key.secret.encode()).digest()
    assert key.secret not in json.dumps({k: str(v) for k, v in stored.items()})
    document = order_document([("ANY", 1)])
    assert (await capture.post("/v1/orders", json=document, headers=bearer(key))).status_code == 202

    async with db.acquire() as conn:
        assert await auth.revoke(conn, key.key_id)

    refused = await eventually(
        lambda: capture.post("/v1/orders", json=order_document([("ANY", 1)]), headers=bearer(key)),
        lambda response: response.status_code == 401,
        timeout=15,
    )
    assert "revoked" in refused.json()["detail"]


async def test_a_key_over_its_rate_gets_429_with_retry_after(capture, db) -> None:
    key = await issued(db, "channel", "webshop", rate=2)
    responses = [await capture.get(f"/v1/orders/{uuid.uuid4()}", headers=bearer(key)) for _ in range(6)]
    statuses = [r.status_code for r in responses]
    assert statuses[:2] == [404, 404], statuses  # within its rate: the orders simply do not exist
    limited = [r for r in responses if r.status_code == 429]
    assert limited, statuses
    assert int(limited[0].headers["retry-after"]) >= 1


async def test_the_services_views_are_for_operators_keys_only(db, pipeline) -> None:
    operator, channel = await issued(db, "operator", None), await issued(db, "channel", "webshop")
    views = [
        ("allocation", "/v1/stock"),
        ("fulfillment", f"/v1/orders/{uuid.uuid4()}/shipments"),
        ("notifications", f"/v1/orders/{uuid.uuid4()}/messages"),
        ("kpis", "/v1/kpis"),
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        for service, path in views:
            url = f"{LOCAL.http_url(service)}{path}"
            assert (await client.get(url)).status_code == 401, url
            assert (await client.get(url, headers=bearer(channel))).status_code == 403, url
            assert (await client.get(url, headers=bearer(operator))).status_code == 200, url


def shopify_delivery(shop: str, secret: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return raw, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }


async def test_two_shops_orders_with_the_same_shopify_id_are_two_orders(db, pipeline) -> None:
    # given a capture instance that knows two shops, each with its own secret
    shops = {"alpha-test.myshopify.com": uuid.uuid4().hex, "beta-test.myshopify.com": uuid.uuid4().hex}
    second = processes.Process(
        LOCAL,
        "capture-shops",
        "services.capture",
        LOCAL.ports.http["capture"] + 30,
        env={"OMS_INSTANCE": "shops", "OMS_SHOPIFY_SHOP_SECRETS": json.dumps(shops)},
    )
    second.start()
    try:
        second.wait_ready()
        shirt, mug = new_skus(2, prefix="SHOP")
        await seed([("ams", shirt, 5), ("ams", mug, 5)])
        body = json.loads(SHOPIFY_SAMPLE.read_text())
        body["id"] = random.randint(10**12, 10**13)
        for line, sku in zip((i for i in body["line_items"] if i["sku"]), (shirt, mug), strict=True):
            line["sku"] = sku

        # when both shops send an order with the same Shopify order id
        answers = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.http_port}", timeout=30) as client:
            for shop, secret in shops.items():
                raw, headers = shopify_delivery(shop, secret, body)
                answers.append(await client.post("/v1/channels/shopify/orders", content=raw, headers=headers))
    finally:
        second.stop()

    # then each is its own order, named by its shop
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert [a.json()["duplicate"] for a in answers] == [False, False]
    stored = await db.fetch(
        "SELECT external_id FROM capture.orders WHERE order_id = ANY($1::uuid[]) ORDER BY external_id",
        [uuid.UUID(a.json()["order_id"]) for a in answers],
    )
    assert [r["external_id"] for r in stored] == [f"{shop}:{body['id']}" for shop in sorted(shops)]
