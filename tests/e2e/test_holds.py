"""Risk holds on the real stack: a velocity breach and a blocklisted address go on hold, unseen by allocation, and
are delivered once an operator releases them; an order cancelled from hold releases nothing it never had and its
customer is told; a hold past its time limit cancels the order and the customer is told."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from deploy.local.keys import Bearer
from shared.contracts import topics
from tests.e2e.test_oms_cli import oms, oms_json
from tests.factories import order_document
from tests.local import LOCAL, client
from tests.returns_steps import on_hand
from tests.scenario import mail_for, mails, new_skus, order_view, parts, restart, seed, wait_status
from tests.waiting import eventually

RISK_RULES = Path(__file__).resolve().parents[2] / "deploy" / "config" / "risk.json"
# The reference rules' blocklisted address (deploy/config/risk.json), typed as a customer might.
BLOCKED_ADDRESS = {
    "name": "B",
    "line1": "blocked lane 13.",
    "city": "Amsterdam",
    "postal_code": "1013xx",
    "country": "NL",
}


async def submit(http: httpx.AsyncClient, document: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/v1/orders", json=document)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def unseen_downstream(db: Any, order_ids: list[str], messages: tuple[str, ...] = ()) -> None:
    """Allocation never heard of these orders, and no customer message but `messages` was made for them."""
    await client.wait_caught_up("oms-allocation", [topics.ORDERS_VALIDATED.name])
    await client.wait_caught_up("oms-notifications", [topics.ORDERS_VALIDATED.name, topics.ORDER_HOLDS.name])
    ids = [uuid.UUID(o) for o in order_ids]
    assert await db.fetchval("SELECT count(*) FROM allocation.orders WHERE order_id = ANY($1::uuid[])", ids) == 0
    made = await db.fetch("SELECT kind FROM notifications.messages WHERE order_id = ANY($1::uuid[])", ids)
    assert sorted(m["kind"] for m in made) == sorted(messages * len(ids))


async def delivered_mail(order_id: str) -> list[str]:
    kinds: list[str] = await eventually(lambda: mail_for(order_id), lambda k: "delivered" in k, timeout=60)
    return kinds


async def test_a_velocity_breach_and_a_blocklisted_address_go_on_hold_and_once_released_are_delivered(http, db) -> None:
    (sku,) = new_skus(1, prefix="RISK")
    await seed([("ams", sku, 10)])
    email = f"burst-{uuid.uuid4().hex[:8]}@example.test"

    def from_the_burst() -> dict[str, Any]:
        document = order_document([(sku, 1)])
        document["customer"]["email"] = email
        return document

    # given five orders from one e-mail today (the reference rules allow five a day)
    assert [(await submit(http, from_the_burst()))["status"] for _ in range(5)] == ["validated"] * 5

    # when a sixth comes, and an order to the blocklisted address (typed otherwise)
    sixth = (await submit(http, from_the_burst()))["order_id"]
    blocked = await submit(http, order_document([(sku, 1)], shipping_address=BLOCKED_ADDRESS))
    assert blocked["status"] == "on_hold"
    blocked_id = blocked["order_id"]

    # then each waits on a fraud hold with its reasons and its assessment, and allocation never hears of it
    held = await order_view(http, sixth)
    assert held["status"] == "on_hold"
    assert [s["status"] for s in held["timeline"]] == ["received", "on_hold"]
    assert [(h["hold_type"], h["state"], h["placed_by"]) for h in held["holds"]] == [
        ("fraud", "held", "risk assessment")
    ]
    assert held["risk"]["recommendation"] == "investigate"
    assert [(r["rule"], r["facts"]["orders"]) for r in held["risk"]["rules"]] == [("velocity.email", 6)]
    other = await order_view(http, blocked_id)
    assert (other["status"], other["risk"]["recommendation"]) == ("on_hold", "cancel")
    # (the address's own velocity may fire too: every run of this test ships there)
    assert "blocklist.shipping_address" in [r["rule"] for r in other["risk"]["rules"]]
    await unseen_downstream(db, [sixth, blocked_id])
    listed = (await http.get("/v1/holds", params={"hold_type": "fraud", "limit": 1000})).json()["orders"]
    assert {sixth, blocked_id} <= {o["order_id"] for o in listed}

    # when a channel tries to release one (403), then an operator releases both
    webshop = json.loads(LOCAL.keys_file.read_text())["channels"]["webshop"]
    refused = await http.post(f"/v1/orders/{sixth}/holds/release", auth=Bearer(webshop))
    assert refused.status_code == 403, refused.text
    released = await http.post(f"/v1/orders/{sixth}/holds/release", json={"note": "customer called back"})
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["released"], released.json()["remaining"]) == (
        "validated",
        ["fraud"],
        [],
    )
    again = await http.post(f"/v1/orders/{blocked_id}/holds/release", json={"hold_types": ["fraud"]})
    assert again.status_code == 200, again.text

    # then both flow to delivery; the customer hears first that the order is confirmed
    for order_id in (sixth, blocked_id):
        delivered = await wait_status(http, order_id, {"delivered"}, timeout=90)
        steps = [s["status"] for s in delivered["timeline"]]
        assert steps[:4] == ["received", "on_hold", "hold_released", "validated"]
        assert await delivered_mail(order_id) == ["confirmed", "delivered", "shipped"]
    confirmed = await db.fetchval(
        "SELECT facts->>'total' FROM notifications.messages WHERE order_id = $1 AND kind = 'confirmed'",
        uuid.UUID(sixth),
    )
    assert confirmed == "14.95 EUR"  # as announced at intake: one unit at 10.00 and 4.95 shipping
    released_steps = [s for s in (await order_view(http, sixth))["timeline"] if s["status"] == "hold_released"]
    assert [s["detail"].split(" by ")[0] for s in released_steps] == ["fraud hold released"]
    assert released_steps[0]["detail"].endswith("; customer called back")
    # and a released order cannot be released again
    late = await http.post(f"/v1/orders/{sixth}/holds/release")
    assert late.status_code == 409 and "not on hold" in late.json()["detail"]


async def test_an_order_cancelled_from_hold_releases_nothing_it_never_had_and_the_customer_is_told(http, db) -> None:
    # given an order from a blocklisted domain on hold, its SKU's stock untouched
    (sku,) = new_skus(1, prefix="RISK")
    await seed([("ams", sku, 3)])
    document = order_document([(sku, 2)])
    document["customer"]["email"] = f"someone-{uuid.uuid4().hex[:8]}@mail.blocked.example"
    order_id = (await submit(http, document))["order_id"]
    assert order_id in {o["order_id"] for o in oms_json("holds", "list", "--type", "fraud", "--limit", "1000")}
    assert "blocklist.domain" in oms("holds", "show", order_id).stdout

    # when an operator cancels it
    oms("holds", "cancel", order_id, "--reason", "we could not verify your payment")

    # then it is cancelled with its hold ended by the operator, nothing was asked of allocation or fulfillment
    view = await order_view(http, order_id)
    assert view["status"] == "cancelled"
    assert [(h["state"], h["released_by"].split(":")[0]) for h in view["holds"]] == [("cancelled", "operator")]
    assert "nothing was allocated" in view["timeline"][-1]["detail"]
    assert [(c["state"], c["source"].split(":")[0]) for c in view["cancellations"]] == [("accepted", "operator")]
    await unseen_downstream(db, [order_id], messages=("hold_cancelled",))
    await client.wait_caught_up("oms-fulfillment", [topics.ORDER_CANCELLATIONS.name])
    assert await on_hand(db, "ams", sku) == (3, 0)
    assert (
        await db.fetchval("SELECT count(*) FROM fulfillment.pick_tasks WHERE order_id = $1", uuid.UUID(order_id)) == 0
    )
    # and the customer is told, in the operator's words
    kinds = await eventually(lambda: mail_for(order_id), bool, timeout=60)
    assert kinds == ["hold_cancelled"]
    assert "we could not verify your payment" in parts(mails(order_id)[0])["text/plain"]
    # and a second cancel is not on hold any more
    assert "not on hold" in oms("holds", "cancel", order_id, expect=1).stderr


async def test_a_hold_past_its_time_limit_cancels_the_order_and_the_customer_is_told(
    http, db, pipeline, tmp_path
) -> None:
    # given an order on hold (from a blocklisted domain)
    (sku,) = new_skus(1, prefix="RISK")
    await seed([("ams", sku, 3)])
    document = order_document([(sku, 1)])
    document["customer"]["email"] = f"late-{uuid.uuid4().hex[:8]}@blocked.example"
    order_id = (await submit(http, document))["order_id"]
    assert (await order_view(http, order_id))["status"] == "on_hold"

    # when capture runs with fraud holds limited to 3.6 seconds, looking every half second
    rules = json.loads(RISK_RULES.read_text())
    rules["time_limits_hours"]["fraud"] = 0.001
    short = tmp_path / "risk.json"
    short.write_text(json.dumps(rules))
    capture = pipeline["capture"]
    try:
        await restart(capture, {"OMS_RISK_RULES_FILE": str(short), "OMS_HOLD_SWEEP_SECONDS": "0.5"})
        # then the order is cancelled, its hold expired
        view = await wait_status(http, order_id, {"cancelled"}, timeout=30)
    finally:
        await restart(capture, {})
    assert [(h["state"], h["released_by"]) for h in view["holds"]] == [("expired", "time limit")]
    # and the customer is told why (never which checks), once
    kinds = await eventually(lambda: mail_for(order_id), bool, timeout=60)
    assert kinds == ["hold_cancelled"]
    text = parts(mails(order_id)[0])["text/plain"]
    assert "could not be completed within 0.001 hours" in text and "fraud" not in text.lower()
    await unseen_downstream(db, [order_id], messages=("hold_cancelled",))
