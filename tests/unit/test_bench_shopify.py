"""The Shopify deliveries the load tools send (the benchmark's Shopify steps, the chaos run's Shopify orders): each
is the generic order it stands for, as capture maps it, signed so that capture's check takes it, with a webhook id
and a Shopify order id of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal

from deploy.bench import load, orders
from deploy.local import shopify
from services.capture.api import SHOPIFY_PATH
from services.capture.settings import DEVELOPMENT_SHOPIFY_SECRET, CaptureSettings
from services.capture.shopify import signature_valid, to_order

SKUS = orders.catalogue("t1", 20)


def hmac_sha256(body: bytes) -> str:
    return base64.b64encode(hmac.new(DEVELOPMENT_SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()


def test_a_delivery_maps_to_the_order_it_stands_for() -> None:
    levels = CaptureSettings(environment="development").shopify_service_levels
    for number in range(12):  # every service level, four countries, four to seven lines
        document = orders.order("t1", "shopify-100-s", number, SKUS)
        mapped = to_order(shopify.orders_create(document, 10**12 + number), levels)
        assert mapped.channel == "shopify"
        assert mapped.external_id == str(10**12 + number)
        assert [(line.sku, line.quantity, line.unit_price) for line in mapped.lines] == [
            (line["sku"], line["quantity"], Decimal(line["unit_price"])) for line in document["lines"]
        ]
        assert mapped.customer.email == document["customer"]["email"]
        assert mapped.customer.name == document["customer"]["name"]
        assert mapped.shipping_address.model_dump(mode="json") == document["shipping_address"]
        assert mapped.service_level == document["service_level"]
        assert mapped.shipping_price == Decimal(document["shipping_price"])
        assert (mapped.payment.status, mapped.payment.amount) == ("paid", Decimal(document["payment"]["amount"]))


def test_the_bench_sends_each_order_once_signed_as_shopify_signs_it() -> None:
    documents = [orders.order("t1", "shopify-100-s", n, SKUS) for n in range(5)]
    first_id = orders.first_shopify_id("t1", "shopify-100-s")
    targets = [
        json.loads(line) for line in load.shopify_targets("http://127.0.0.1:8080", documents, first_id).splitlines()
    ]
    assert {t["method"] for t in targets} == {"POST"}
    assert {t["url"] for t in targets} == {f"http://127.0.0.1:8080{SHOPIFY_PATH}"}
    bodies = [base64.b64decode(t["body"]) for t in targets]
    for target, body in zip(targets, bodies, strict=True):
        header = target["header"]
        assert header["X-Shopify-Topic"] == ["orders/create"]
        assert header["X-Shopify-Hmac-Sha256"] == [hmac_sha256(body)]  # as Shopify computes it
        assert signature_valid(body, header["X-Shopify-Hmac-Sha256"][0], DEVELOPMENT_SHOPIFY_SECRET)
    assert len({t["header"]["X-Shopify-Webhook-Id"][0] for t in targets}) == 5
    assert [json.loads(body)["id"] for body in bodies] == [first_id + n for n in range(5)]


def test_phases_and_runs_get_shopify_ids_apart() -> None:
    firsts = {
        orders.first_shopify_id(run, phase)
        for run in ("a1b2c3", "d4e5f6")
        for phase in ("shopify-100-s", "shopify-200-s")
    }
    assert len(firsts) == 4
    assert all(first >= 10**12 and first + 100_000 < 10**13 for first in firsts)
    assert min(abs(a - b) for a in firsts for b in firsts if a != b) >= 100_000
