"""No personal data in the logs: orders with recognisable names, e-mail addresses and street lines go through
every path (delivered, rejected, cancelled, a refused Shopify webhook), and afterwards no log of any service or
of the simulator holds any of it, nor the names, addresses and e-mail domain every other test order uses."""

import json
import re
import uuid
from typing import Any

from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import mail_for, new_skus, seed, wait_status
from tests.waiting import eventually

# What every order built by tests.factories carries: none of it may be in a log either.
FACTORY_PERSONAL_DATA = ("Test Customer", "Dam 1", "1012 JS", "@example.test")


def personal(marker: str) -> dict[str, Any]:
    return {
        "customer": {"email": f"ylva.{marker}@privacy.example", "name": f"Ylva Quist-{marker}", "phone": "+3120555"},
        "shipping_address": {
            "name": f"Ylva Quist-{marker}",
            "line1": f"{marker} Lantern Lane",
            "line2": f"Flat {marker}",
            "city": "Amsterdam",
            "postal_code": "1017 CE",
            "country": "NL",
        },
    }


def logs_holding(needles: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for log in sorted((LOCAL.state / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        if hits := [needle for needle in needles if needle in text]:
            found[log.name] = hits
    return found


async def told(order_id: str, kind: str) -> None:
    await eventually(lambda: mail_for(order_id), lambda kinds: kind in kinds)


async def test_no_log_holds_a_customers_name_email_or_street(http, db) -> None:
    marker = uuid.uuid4().hex[:10]
    held, shipped = new_skus(1, prefix="HOLD")[0], new_skus(1)[0]
    await seed([("ams", shipped, 5), ("ams", held, 5)])

    # given orders of a recognisable customer that are delivered, rejected and cancelled
    delivered = order_document([(shipped, 1)], **personal(marker))
    rejected = order_document([(f"UNKNOWN-{marker}", 1)], **personal(marker))
    cancelled = order_document([(held, 1)], **personal(marker))
    ids = [(await http.post("/v1/orders", json=d)).json()["order_id"] for d in (delivered, rejected, cancelled)]
    assert (await http.post(f"/v1/orders/{ids[2]}/cancel", json={"reason": "changed my mind"})).status_code == 202
    # and a malformed order and an unsigned Shopify webhook that carry the same data
    malformed = {**order_document([(shipped, 1)], **personal(marker)), "currency": "euro"}
    assert (await http.post("/v1/orders", json=malformed)).status_code == 422
    unsigned = await http.post(
        "/v1/channels/shopify/orders",
        content=json.dumps({"email": f"ylva.{marker}@privacy.example", "id": 1}),
        headers={"X-Shopify-Shop-Domain": "oms-dev.myshopify.com", "X-Shopify-Hmac-Sha256": "forged"},
    )
    assert unsigned.status_code == 401

    # when they have run their course and the customer was told each time
    await wait_status(http, ids[0], {"delivered"}, timeout=60)
    await wait_status(http, ids[1], {"rejected"})
    await wait_status(http, ids[2], {"cancelled"})
    for order_id, kind in zip(ids, ("delivered", "rejected", "cancelled"), strict=True):
        await told(order_id, kind)

    # then no log holds the name, the e-mail address or the street, nor the test factories' personal data
    assert logs_holding([marker, "Lantern Lane", "privacy.example", *FACTORY_PERSONAL_DATA]) == {}
    # and no log line holds anything shaped like an e-mail address at all
    email = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
    for log in (LOCAL.state / "logs").glob("*.log"):
        assert not email.search(log.read_text(errors="replace")), log.name
