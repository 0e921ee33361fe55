"""The `oms` command as installed by the project, run as a subprocess against the running pipeline."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.cli.main import parser
from deploy.local import scrape
from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL, STACK, client
from tests.scenario import new_skus, seed, service_metrics, wait_status
from tests.waiting import eventually, eventually_sync

OMS = Path(sys.executable).parent / "oms"
VERBS = [
    [],
    ["stack"],
    ["stack", "up"],
    ["stack", "down"],
    ["stack", "status"],
    ["order"],
    ["order", "show"],
    ["order", "submit"],
    ["order", "change"],
    ["inventory"],
    ["inventory", "show"],
    ["inventory", "receive"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "replay"],
    ["topics"],
    ["keys"],
    ["keys", "issue"],
    ["keys", "revoke"],
    ["keys", "list"],
    ["returns"],
    ["returns", "list"],
    ["returns", "show"],
    ["returns", "approve"],
    ["returns", "reject"],
    ["holds"],
    ["holds", "list"],
    ["holds", "show"],
    ["holds", "release"],
    ["holds", "cancel"],
    ["replenishment"],
    ["dropship"],
    ["dropship", "list"],
    ["kpi"],
]


def oms(*args: str, expect: int = 0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(OMS), *args], check=False, capture_output=True, text=True, input=stdin, timeout=120)
    assert result.returncode == expect, f"oms {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def oms_json(*args: str, expect: int = 0) -> Any:
    return json.loads(oms(*args, "--json", expect=expect).stdout)


def test_the_project_installs_the_command() -> None:
    shown = oms("--help").stdout
    assert shown.startswith("usage: oms")
    assert all(verb in shown for verb in ("stack", "order", "inventory", "dlq", "topics"))


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "oms")
def test_every_verb_explains_itself(verb) -> None:
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit) as exit_status:
        parser().parse_args([*verb, "--help"])
    assert exit_status.value.code == 0
    assert shown.getvalue().startswith(f"usage: oms {' '.join(verb)}".rstrip())
    if len(verb) == 2 or verb in (["topics"], ["replenishment"], ["kpi"]):
        assert "--json" in shown.getvalue()


def test_stack_up_on_a_running_stack_changes_nothing_and_lists_every_component(pipeline) -> None:
    pids = {name: process.pid() for name, process in pipeline.items()}
    if STACK == "containers":
        # Kafka and PostgreSQL are the session's containers, not the command's: it refuses to start its own broker
        # on their port, and leaves every service as it was
        refused = oms("stack", "up", "--no-prometheus", "--json", expect=1)
        assert f"port {LOCAL.ports.kafka} or {LOCAL.ports.kafka_controller} is taken" in refused.stderr
        assert {name: process.pid() for name, process in pipeline.items()} == pids
        return
    components = {c["name"]: c for c in oms_json("stack", "up", "--no-prometheus")}
    assert {name: components[name]["pid"] for name in pids} == pids
    assert components == {c["name"]: c for c in oms_json("stack", "status")}
    assert {"kafka", "postgres", "smtp", "capture", "allocation", "fulfillment", "notifications"} <= set(components)
    assert all(components[n]["state"] == "running" for n in ("kafka", "postgres", "smtp"))
    assert all(components[s]["state"] == "ready" for s in LOCAL.ports.http)
    assert components["capture"]["address"] == LOCAL.http_url("capture")


async def test_orders_submitted_from_a_file_can_be_followed_to_their_shipment_and_messages(http, tmp_path) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    good = order_document([(sku, 2)])
    malformed = order_document([(sku, 1)])
    del malformed["payment"]
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps([good, malformed]))

    # when both are submitted: one is accepted, the other refused with the reason, and the exit status says so
    results = oms_json("order", "submit", str(orders), expect=1)
    assert results[0]["external_id"] == good["external_id"] and results[0]["status"] == "validated"
    assert results[1]["error"] == 422 and "body.payment: Field required" in results[1]["reasons"]

    # then `order show` follows the accepted one to delivery, with its shipment and its messages
    order_id = results[0]["order_id"]
    await wait_status(http, order_id, {"delivered"})
    shown = await eventually(
        lambda: oms_json("order", "show", order_id),
        lambda view: {m["status"] for m in view["messages"] or []} == {"sent"} and len(view["messages"]) == 3,
    )
    assert shown["status"] == "delivered"
    assert [s["status"] for s in shown["timeline"]] == [
        "received",
        "validated",
        "allocated",
        "released",
        "shipped",
        "delivered",
    ]
    (shipment,) = shown["shipments"]
    assert shipment["warehouse_id"] == "ams" and shipment["tracking_number"] and shipment["delivered_at"]
    assert shipment["lines"] == [{"sku": sku, "quantity": 2}]
    # and allocation's priority, explained: a standard order with no tier, its age earned
    assert shown["priority"]["band"] == 0
    assert [c["name"] for c in shown["priority"]["components"]] == ["service_level", "promise", "age"]
    assert sorted(m["kind"] for m in shown["messages"]) == ["confirmed", "delivered", "shipped"]
    # an operator's view, not the customer's data
    text = oms("order", "show", order_id).stdout
    assert good["customer"]["email"] not in text and good["customer"]["email"] not in json.dumps(shown)
    assert "delivered" in text and shipment["tracking_number"] in text
    assert "priority 0 (band 0): service_level 0 (standard)" in text

    unknown = oms("order", "show", str(uuid.uuid4()), expect=1)
    assert "capture knows no order" in unknown.stderr


def test_a_receipt_is_applied_once_per_reference_and_shows_in_stock(pipeline) -> None:
    (sku,) = new_skus(1)
    first = oms_json("inventory", "receive", "fra", sku, "7")
    assert first["receipt"]["reference"].startswith("oms-cli-")
    assert (first["stock"]["on_hand"], first["stock"]["available"]) == (7, 7)
    # the same reference again changes nothing; a new receipt adds up
    assert (
        oms_json("inventory", "receive", "fra", sku, "7", "--reference", first["receipt"]["reference"])["stock"][
            "on_hand"
        ]
        == 7
    )
    assert oms_json("inventory", "receive", "fra", sku, "3")["stock"]["on_hand"] == 10
    rows = oms_json("inventory", "show", "--sku", sku)
    assert [(r["warehouse_id"], r["on_hand"], r["reserved"]) for r in rows] == [("fra", 10, 0)]
    assert oms_json("inventory", "show", "--sku", sku, "--low", "9") == []
    assert len(oms_json("inventory", "show", "--sku", sku, "--low", "10")) == 1
    assert "at least one unit" in oms("inventory", "receive", "fra", sku, "0", expect=1).stderr


async def test_an_order_is_changed_from_the_command_line(http) -> None:
    # given an order released to Amsterdam (the simulated warehouse sits on HOLD- SKUs), the SKU in Lyon too
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 2), ("lyo", sku, 2)])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 1)], amount="50.00"))).json()["order_id"]
    await wait_status(http, order_id, {"allocated"})
    lyon = {
        "name": "Test Customer",
        "line1": "Place Bellecour 1",
        "city": "Lyon",
        "postal_code": "69002",
        "country": "FR",
    }

    # when an operator moves it to Lyon and asks for two units, by express
    answer = oms_json(
        "order", "change", order_id, "--ship-to", json.dumps(lyon), "--service-level", "express", "--line", f"{sku}=2"
    )

    # then the change is taken, and applied: both units now in Lyon
    assert (answer["state"], answer["version"], answer["to_pay"]) == ("requested", 1, "0.0000")
    shown = await eventually(
        lambda: oms_json("order", "show", order_id), lambda view: view["changes"][0]["state"] == "applied"
    )
    assert (shown["version"], shown["ordered"]) == (1, {sku: 2})
    assert "changed" in [step["status"] for step in shown["timeline"]]
    # and a change that does not fit the order is refused with its reason and exit status 1
    refused = oms_json("order", "change", order_id, "--line", "NOT-IN-IT=1", expect=1)
    assert refused == {"error": 422, "detail": "NOT-IN-IT: a line added needs its unit_price"}


async def test_replenishment_lists_what_to_order_with_the_reorder_point_demand_suggests(http) -> None:
    # given a SKU with a reorder rule (the local stack's: REPL-* in Amsterdam, minimum 10, 5 days' lead time),
    # of which 5 units are received: below the minimum at once
    sku = f"REPL-{uuid.uuid4().hex[:10]}"
    await client.publish_products([sku])
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    oms("inventory", "receive", "ams", sku, "5")
    # and 2 of them ordered today
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    await wait_status(http, order_id, {"allocated", "shipped", "delivered"})

    # when operators ask what to order
    def listing(*options: str) -> Any:
        return oms_json("replenishment", "--limit", "1000", *options)

    found = eventually_sync(
        listing, lambda body: any(p["sku"] == sku and p["average_daily_demand"] for p in body["reorder_points"])
    )

    # then the open suggestion is listed, and beside the minimum, the reorder point of 2 units a day over 5 days
    (suggestion,) = [s for s in found["suggestions"] if s["sku"] == sku]
    assert (suggestion["warehouse_id"], suggestion["quantity"], suggestion["status"]) == ("ams", 30, "open")
    (point,) = [p for p in found["reorder_points"] if p["sku"] == sku]
    assert (point["minimum"], point["suggested_reorder_point"], point["average_daily_demand"]) == (10, 10, 2.0)
    assert sku in oms("replenishment", "--limit", "1000").stdout

    # and once a receipt names it, it is listed as received, no longer open
    oms("inventory", "receive", "ams", sku, "30", "--reference", suggestion["suggestion_id"])
    assert sku not in {s["sku"] for s in listing()["suggestions"]}
    (received,) = [s for s in listing("--status", "received")["suggestions"] if s["sku"] == sku]
    assert received["received_by"] == suggestion["suggestion_id"]


async def test_topics_show_partitions_end_offsets_and_the_services_lag(pipeline) -> None:
    # given an order that came in over Kafka and was taken in, so capture has a position on the intake topic
    document = order_document()
    await client.publish(topics.ORDERS_SUBMITTED.name, [(f"{document['channel']}:{document['external_id']}", document)])
    await client.wait_caught_up("oms-capture", [topics.ORDERS_SUBMITTED.name])
    states = {t["topic"]: t for t in oms_json("topics")}
    assert set(states) >= {t.name for t in topics.TOPICS}
    submitted = states[topics.ORDERS_SUBMITTED.name]
    assert submitted["partitions"] == 6 and len(submitted["end_offsets"]) == 6
    assert "oms-capture" in submitted["lag"]
    assert set(states[topics.ORDERS_VALIDATED.name]["lag"]) >= {"oms-allocation", "oms-notifications"}
    assert all(not group.startswith("test-") for t in states.values() for group in t["lag"])


def capture_consumed(outcome: str) -> float:
    consumed = "oms_messages_consumed_total"
    return scrape.total(service_metrics("capture"), consumed, topic=topics.ORDERS_SUBMITTED.name, outcome=outcome)


async def test_a_dead_letter_replayed_after_the_fix_is_processed_once(pipeline, db) -> None:
    capture = pipeline["capture"]
    (sku,) = new_skus(1)
    await seed([("ams", sku, 100)])
    # a large B2B order: 60 lines, over 4 KB
    order = order_document([(sku, 1)] * 60, channel="b2b")
    key = f"b2b:{order['external_id']}"

    async def caught_up() -> None:
        await client.wait_caught_up("oms-capture", [topics.ORDERS_SUBMITTED.name])

    def letters_for_key() -> list[dict[str, Any]]:
        return [d for d in oms_json("dlq", "list", "--all", "--topic", topics.ORDERS_SUBMITTED.name) if d["key"] == key]

    # given capture misconfigured with a 4000-byte limit on records
    capture.stop()
    capture.env = {"OMS_MAX_BODY_BYTES": "4000"}
    capture.start()
    try:
        capture.wait_ready()
        await client.publish(topics.ORDERS_SUBMITTED.name, [(key, order)])
        await caught_up()
        (first,) = await eventually(letters_for_key, lambda found: len(found) == 1)
        assert first["reason"].startswith("oversized: ") and first["replay_of"] is None and not first["replayed"]

        # when it is replayed before the fix, it fails again and returns to the dead-letter topic once
        assert oms_json("dlq", "replay", first["id"])[0]["id"] == first["id"]
        await caught_up()
        letters = await eventually(letters_for_key, lambda found: len(found) == 2)
        assert letters[0]["replayed"] and letters[1]["replay_of"] == first["id"]
        assert letters[1]["reason"].startswith("oversized: ")
        pending = [d["id"] for d in oms_json("dlq", "list", "--topic", topics.ORDERS_SUBMITTED.name)]
        assert first["id"] not in pending and letters[1]["id"] in pending
    finally:
        # the fix: capture back with its normal limit
        capture.stop()
        capture.env = {}
        capture.start()
    capture.wait_ready()
    await caught_up()
    assert await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", order["external_id"]) == 0

    # when the dead letter is replayed after the fix, it is processed
    processed, duplicates = capture_consumed("processed"), capture_consumed("duplicate")
    oms("dlq", "replay", letters[1]["id"])
    await caught_up()
    status = await eventually(
        lambda: db.fetchval("SELECT status FROM capture.orders WHERE external_id = $1", order["external_id"]),
        lambda s: s is not None,
    )
    assert status in {"validated", "allocated", "released", "shipped", "delivered"}
    assert capture_consumed("processed") == processed + 1

    # and replaying it once more is recognised as the same event: skipped, nothing new
    again = oms("dlq", "replay", letters[1]["id"])
    assert "was replayed before" in again.stderr
    await caught_up()
    assert capture_consumed("duplicate") == duplicates + 1
    assert capture_consumed("processed") == processed + 1
    assert await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", order["external_id"]) == 1
    assert len(letters_for_key()) == 2


def test_keys_issue_list_and_revoke_a_channels_key_which_then_submits_no_more(pipeline) -> None:
    issued = oms_json("keys", "issue", "--channel", "marketplace", "--label", "cli test", "--rate", "50")
    assert issued["token"].startswith(f"omsk_{issued['key_id']}_")
    listed = {k["key_id"]: k for k in oms_json("keys", "list")}
    assert listed[issued["key_id"]]["channel"] == "marketplace"
    assert "token" not in listed[issued["key_id"]] and issued["token"] not in json.dumps(listed, default=str)
    headers = {"Authorization": f"Bearer {issued['token']}"}
    document = order_document([("ANY", 1)], channel="marketplace")
    assert httpx.post(f"{LOCAL.http_url('capture')}/v1/orders", json=document, headers=headers).status_code == 202

    oms("keys", "revoke", issued["key_id"])

    assert {k["key_id"]: k for k in oms_json("keys", "list")}[issued["key_id"]]["revoked_at"] is not None

    def submit() -> int:
        document = order_document([("ANY", 1)], channel="marketplace")
        return httpx.post(f"{LOCAL.http_url('capture')}/v1/orders", json=document, headers=headers).status_code

    assert eventually_sync(submit, lambda status: status == 401, timeout=15) == 401
    oms("keys", "revoke", issued["key_id"], expect=1)  # revoked already


async def test_dropship_list_shows_the_purchase_orders_still_with_their_suppliers(http) -> None:
    # given an order of a SKU acme-direct ships, answered only after 15 s
    sku = f"DS-ACME-SLOW-{uuid.uuid4().hex[:10]}"
    await client.publish_products([sku])
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    await wait_status(http, order_id, {"allocated"})
    # when operators list the open purchase orders (while the supplier has not shipped: about 15 s)
    shown = eventually_sync(lambda: oms("dropship", "list", "--limit", "1000").stdout, lambda out: order_id in out)
    found = oms_json("dropship", "list", "--limit", "1000")
    # then it is there, with its supplier, lines and dates
    assert f"order {order_id}: {sku} x2" in shown
    (po,) = [p for p in found if p["order_id"] == order_id]
    assert (po["supplier_id"], po["lines"]) == ("acme-direct", [{"sku": sku, "quantity": 2}])
    assert po["status"] in ("issued", "acknowledged")
    assert po["ship_by"] and po["answer_by"]
