"""Order changes before pick, end to end on the real stack: capture decides and prices the change, fulfillment
withdraws the pick tasks it touches (or refuses, once the warehouse has started), allocation releases and re-routes
in one step, and a new pick task goes out with the new ship-to. The simulated warehouse sits on HOLD- SKUs, so
their pick tasks stay released until the test says otherwise."""

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx

from deploy.chaos import evidence, invariants
from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.integration.allocation_steps import assert_books_balance, open_shipment, shipments, stock
from tests.local import LOCAL, client
from tests.returns_steps import (
    answers_for,
    ask_return,
    known_delivered,
    order_refunds,
    return_line,
    settled_refunds,
)
from tests.scenario import TopicReader, mails, new_skus, order_view, parts, publish_event, seed, wait_status
from tests.waiting import eventually

ROTTERDAM = {
    "name": "Test Customer",
    "line1": "Coolsingel 40",
    "city": "Rotterdam",
    "postal_code": "3011 AD",
    "country": "NL",
}
LYON = {"name": "Test Customer", "line1": "Place Bellecour 1", "city": "Lyon", "postal_code": "69002", "country": "FR"}


def hold_sku() -> str:
    return f"HOLD-{uuid.uuid4().hex[:12]}"


async def released_order(http: httpx.AsyncClient, db: Any, lines: list[tuple[str, int]], **document: Any) -> str:
    """An order whose pick task is with the Amsterdam warehouse, allocated as capture knows it."""
    order_id: str = (await http.post("/v1/orders", json=order_document(lines, **document))).json()["order_id"]
    shipment = await open_shipment(db, order_id, "ams")
    await eventually(lambda: task_status(db, shipment), lambda status: status == "released")
    await wait_status(http, order_id, {"allocated"})  # capture has heard from allocation: it may be changed
    return order_id


async def task_status(db: Any, pick_task_id: uuid.UUID) -> str | None:
    return await db.fetchval("SELECT status FROM fulfillment.pick_tasks WHERE pick_task_id = $1", pick_task_id)  # type: ignore[no-any-return]


async def change(http: httpx.AsyncClient, order_id: str, **fields: Any) -> httpx.Response:
    return await http.post(f"/v1/orders/{order_id}/changes", json={"change_id": f"chg-{uuid.uuid4()}", **fields})


async def change_state(http: httpx.AsyncClient, order_id: str, states: set[str]) -> dict[str, Any]:
    view = await eventually(
        lambda: order_view(http, order_id), lambda v: bool(v["changes"]) and v["changes"][-1]["state"] in states
    )
    return view  # type: ignore[no-any-return]


async def pick_tasks_for(reader: TopicReader, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(b["type"], b["payload"]) for b in await reader.bodies_for(order_id)]


async def test_an_address_change_before_pick_reissues_the_task_with_the_new_ship_to_from_the_same_warehouse(
    http, db
) -> None:
    # given an order whose pick task is with the Amsterdam warehouse
    sku = hold_sku()
    await seed([("ams", sku, 2)])
    order_id = await released_order(http, db, [(sku, 2)])
    [old_task] = [
        s
        for s in await db.fetch(
            "SELECT shipment_id FROM allocation.reservations WHERE order_id = $1", uuid.UUID(order_id)
        )
    ]

    async with TopicReader(topics.PICK_TASKS.name) as tasks:
        # when the customer moves the delivery to Rotterdam
        answer = await change(http, order_id, shipping_address=ROTTERDAM, reason="moving")

        # then the change is taken at once, as version 1, nothing more to pay
        assert answer.status_code == 202, answer.text
        assert (answer.json()["state"], answer.json()["version"], answer.json()["to_pay"]) == ("requested", 1, "0.0000")
        # and the warehouse is told to stop the old task and gets a new one for Rotterdam, still from Amsterdam
        published = await eventually(lambda: pick_tasks_for(tasks, order_id), lambda found: len(found) >= 2)
    [(withdrawn, stop), (released, task)] = published
    assert (withdrawn, stop["pick_task_id"], stop["order_version"]) == ("PickTaskCancelled", str(old_task[0]), 1)
    assert (released, task["warehouse_id"], task["ship_to"]["city"], task["order_version"]) == (
        "PickTaskReleased",
        "ams",
        "Rotterdam",
        1,
    )
    # and the order shows the change, before and after, applied
    view = await change_state(http, order_id, {"applied"})
    assert view["version"] == 1
    [applied] = view["changes"]
    assert (applied["before"]["shipping_address"]["city"], applied["after"]["shipping_address"]["city"]) == (
        "Amsterdam",
        "Rotterdam",
    )
    steps = [s["status"] for s in view["timeline"]]
    assert steps.index("change_requested") < steps.index("change_accepted") < steps.index("changed")
    assert await stock(db, "ams", sku) == (2, 2)
    await assert_books_balance(db, [sku])

    # and the customer is told once, however often allocation's report of the change is delivered
    [mail] = await eventually(lambda: mails(order_id, "changed"), bool)
    assert "It ships to Rotterdam, NL (standard delivery)." in parts(mail)["text/plain"]
    changed = ev.OrderChanged(
        order_id=uuid.UUID(order_id),
        change_id=applied["change_id"],
        order_version=1,
        ship_to=ev.Address.model_validate(ROTTERDAM),
        service_level="standard",
        lines=[ev.ItemQuantity(sku=sku, quantity=2)],
        reason="moving",
    )
    await publish_event(topics.ALLOCATION_EVENTS, changed, uuid.UUID(order_id))
    await client.wait_caught_up("oms-notifications", [topics.ALLOCATION_EVENTS.name])
    messages = await db.fetchval(
        "SELECT count(*) FROM notifications.messages WHERE order_id = $1 AND kind = 'changed'", uuid.UUID(order_id)
    )
    assert (messages, len(mails(order_id, "changed"))) == (1, 1)
    await client.wait_caught_up("oms-capture", [topics.ALLOCATION_EVENTS.name])
    assert [s["status"] for s in (await order_view(http, order_id))["timeline"]].count("changed") == 1


async def test_an_address_change_to_another_country_reroutes_to_the_nearer_warehouse_and_books_balance(
    http, db
) -> None:
    # given an order for the Netherlands held in Amsterdam, and the same SKU in Lyon
    sku = hold_sku()
    await seed([("ams", sku, 1), ("lyo", sku, 1)])
    order_id = await released_order(http, db, [(sku, 1)])

    amsterdam = await open_shipment(db, order_id, "ams")

    # when the customer moves the delivery to Lyon, by express
    answer = await change(http, order_id, shipping_address=LYON, service_level="express")
    assert answer.status_code == 202, answer.text

    # then the units are released in Amsterdam and reserved in Lyon, in one step, and a task goes to Lyon
    await change_state(http, order_id, {"applied"})
    lyon = await open_shipment(db, order_id, "lyo")
    await eventually(lambda: task_status(db, lyon), lambda status: status == "released")
    assert await shipments(db, order_id) == [("ams", sku, 1, 0, "released"), ("lyo", sku, 1, 0, "open")]
    assert (await stock(db, "ams", sku), await stock(db, "lyo", sku)) == ((1, 0), (1, 1))
    await assert_books_balance(db, [sku])
    # re-promised for the new service level (express: 2 business days, standard: 5)
    tasks = await db.fetch(
        "SELECT pick_task_id, status, service_level, promised_delivery FROM fulfillment.pick_tasks"
        " WHERE pick_task_id = ANY($1::uuid[])",
        [amsterdam, lyon],
    )
    before, after = sorted(tasks, key=lambda t: t["pick_task_id"] != amsterdam)
    assert (before["status"], before["service_level"], after["service_level"]) == ("cancelled", "standard", "express")
    assert after["promised_delivery"] < before["promised_delivery"]


async def test_a_quantity_increase_with_stock_is_reserved(http, db) -> None:
    # given an order of two units held in Amsterdam, which has two more
    sku = hold_sku()
    await seed([("ams", sku, 4)])
    order_id = await released_order(http, db, [(sku, 2)], amount="100.00")  # paid enough for more

    # when the customer wants three
    answer = await change(http, order_id, lines=[{"sku": sku, "quantity": 3}])
    assert answer.status_code == 202, answer.text
    assert (answer.json()["state"], answer.json()["to_pay"]) == ("requested", "0.0000")

    # then the third unit is reserved too, the first two stay where they are, and the order holds three
    view = await change_state(http, order_id, {"applied"})
    assert (view["ordered"], view["backordered"], view["total"]) == ({sku: 3}, {}, "34.9500")
    reserved = await shipments(db, order_id)
    assert sorted(reserved) == [("ams", sku, 1, 0, "open"), ("ams", sku, 2, 0, "open")]
    assert await stock(db, "ams", sku) == (4, 3)
    await assert_books_balance(db, [sku])


async def test_a_quantity_increase_without_stock_waits_for_the_missing_part(http, db) -> None:
    # given an order of the only two units there are
    sku = hold_sku()
    await seed([("ams", sku, 2)])
    order_id = await released_order(http, db, [(sku, 2)], amount="100.00")

    # when the customer wants five
    assert (await change(http, order_id, lines=[{"sku": sku, "quantity": 5}])).status_code == 202

    # then the two stay reserved and three wait for stock
    view = await change_state(http, order_id, {"applied"})
    assert (view["ordered"], view["backordered"]) == ({sku: 5}, {sku: 3})
    assert "waiting for stock" in view["timeline"][-1]["detail"] or view["status"] == "backordered"
    assert await stock(db, "ams", sku) == (2, 2)
    await assert_books_balance(db, [sku])


async def test_a_quantity_increase_without_stock_is_refused_for_an_order_that_does_not_wait(http, db) -> None:
    # given an order that does not wait for stock, holding the only two units there are
    sku = hold_sku()
    await seed([("ams", sku, 2)])
    order_id = await released_order(http, db, [(sku, 2)], amount="100.00", backorder_policy="reject")

    # when the customer wants five
    assert (await change(http, order_id, lines=[{"sku": sku, "quantity": 5}])).status_code == 202

    # then the three added are refused with the reason, the two stay, and the order and its total are as before
    view = await change_state(http, order_id, {"applied"})
    changed = next(s for s in view["timeline"] if s["status"] == "changed")
    assert f"not added (the order does not wait for stock): {sku} x3" in changed["detail"]
    assert (view["ordered"], view["backordered"], view["total"]) == ({sku: 2}, {}, "24.9500")
    assert view["changes"][0]["due_back"] == "0.0000"
    assert await stock(db, "ams", sku) == (2, 2)
    await assert_books_balance(db, [sku])


async def test_a_higher_total_waits_for_the_payment_and_goes_on_when_it_comes(http, db) -> None:
    # given an order paid exactly (2 x 10.00 + 4.95)
    sku = hold_sku()
    await seed([("ams", sku, 3)])
    document = order_document([(sku, 2)])
    order_id: str = (await http.post("/v1/orders", json=document)).json()["order_id"]
    await wait_status(http, order_id, {"allocated"})

    # when the customer wants three: 10.00 more to pay
    answer = await change(http, order_id, lines=[{"sku": sku, "quantity": 3}])
    assert (answer.status_code, answer.json()["state"], answer.json()["to_pay"]) == (202, "awaiting_payment", "10.0000")

    # then nothing is re-allocated while it waits
    view = await order_view(http, order_id)
    assert (view["changes"][0]["state"], view["version"], view["ordered"]) == ("awaiting_payment", 0, {sku: 2})
    # and another change is refused meanwhile
    busy = await change(http, order_id, service_level="express")
    assert busy.status_code == 409 and "still under way (awaiting_payment)" in busy.json()["detail"]

    # when the channel reports the payment
    payment = {
        "channel": document["channel"],
        "external_id": document["external_id"],
        "payment_id": f"pay-{uuid.uuid4()}",
        "amount": "10.00",
        "currency": "EUR",
        "received_at": "2026-01-01T12:00:00+00:00",
    }
    await client.publish(topics.PAYMENTS_RECEIVED.name, [(f"{document['channel']}:{document['external_id']}", payment)])

    # then the change goes on and is applied: three units reserved
    view = await change_state(http, order_id, {"applied"})
    assert (view["version"], view["ordered"], view["paid"]) == (1, {sku: 3}, "34.9500")
    assert "change_paid" in [s["status"] for s in view["timeline"]]
    assert await stock(db, "ams", sku) == (3, 3)
    await assert_books_balance(db, [sku])


async def test_a_lower_total_is_refunded_once_at_the_provider_however_often_the_change_is_delivered(http, db) -> None:
    # given an order of three units at 10.00, paid, held in Amsterdam
    sku = hold_sku()
    await seed([("ams", sku, 3)])
    order_id = await released_order(http, db, [(sku, 3)])

    async with TopicReader(topics.REFUND_RESULTS.name) as results, TopicReader(topics.ORDER_CHANGES.name) as changes:
        # when the customer wants one: 20.00 due back
        answer = await change(http, order_id, lines=[{"sku": sku, "quantity": 1}])
        assert (answer.status_code, answer.json()["due_back"]) == (202, "20.0000")

        # then the change is applied, and returns refunds the 20.00 through the payment provider, once
        view = await change_state(http, order_id, {"applied"})
        assert (view["ordered"], view["total"]) == ({sku: 1}, "14.9500")
        (refund,) = await settled_refunds(order_id)
        key = f"order-change:{order_id}:1"
        assert (refund["status"], refund["amount"], refund["idempotency_key"]) == ("succeeded", "20.00", key)
        assert (refund["change_id"], refund["return_id"]) == (answer.json()["change_id"], None)
        (paid,) = await eventually(lambda: answers_for(results, key), bool)
        assert (paid["outcome"], paid["amount"], paid["provider_reference"]) == (
            "succeeded",
            "20.00",
            refund["provider_reference"],
        )

        # and the customer's order view shows the refund on the change, in its timeline and in what was refunded
        view = await eventually(lambda: order_view(http, order_id), lambda v: v["changes"][0]["refund_state"])
        (applied,) = view["changes"]
        assert (applied["refund_state"], applied["refunded"], applied["refund_note"]) == (
            "refunded",
            "20.0000",
            refund["provider_reference"],
        )
        assert view["refunded"] == "20.00"
        assert f"change {applied['change_id']}: 20.00 EUR" in [
            s["detail"] for s in view["timeline"] if s["status"] == "refunded"
        ]
        # and the customer is told how it was worked out
        [mail] = await eventually(lambda: mails(order_id, "change_refunded"), bool)
        assert "refund: 20.00 EUR" in parts(mail)["text/plain"]

        # when capture's announcement of the applied change is delivered again (another event, the same change)
        found = await eventually(
            lambda: changes.bodies_for(order_id), lambda b: "OrderChangeApplied" in [e["type"] for e in b]
        )
        (announced,) = [b for b in found if b["type"] == "OrderChangeApplied"]
        again = ev.OrderChangeApplied.model_validate(announced["payload"])
        await publish_event(topics.ORDER_CHANGES, again, uuid.UUID(order_id))
        await client.wait_caught_up("oms-returns", [topics.ORDER_CHANGES.name])

        # then nothing more is refunded: one refund, asked of the provider once
        assert [r["refund_id"] for r in await order_refunds(order_id)] == [refund["refund_id"]]
        assert len(await answers_for(results, key)) == 1
        assert len(mails(order_id, "change_refunded")) == 1
    assert await stock(db, "ams", sku) == (3, 1)
    await assert_books_balance(db, [sku])


async def test_a_change_refund_the_provider_refuses_is_abandoned_with_the_reason_for_an_operator(http, db) -> None:
    # given an order of three units whose payment the provider will not refund to
    sku = hold_sku()
    await seed([("ams", sku, 3)])
    order_id = await released_order(http, db, [(sku, 3)], external_id=f"REFUND-REFUSED-{uuid.uuid4()}")

    # when the customer wants one: 20.00 due back
    answer = await change(http, order_id, lines=[{"sku": sku, "quantity": 1}])
    assert (answer.status_code, answer.json()["due_back"]) == (202, "20.0000")

    # then the refund is abandoned with the provider's reason, nothing paid
    (refund,) = await settled_refunds(order_id)
    assert (refund["status"], refund["last_error"], refund["provider_reference"]) == (
        "abandoned",
        "the card account is closed",
        None,
    )
    # and the order view says so on the change and in the timeline, and counts nothing as refunded
    view = await eventually(lambda: order_view(http, order_id), lambda v: v["changes"][0]["refund_state"])
    (applied,) = view["changes"]
    assert (applied["refund_state"], applied["refunded"], applied["refund_note"]) == (
        "abandoned",
        "0.0000",
        "the card account is closed",
    )
    assert [s["detail"] for s in view["timeline"] if s["status"] == "refund_failed"] == [
        f"change {applied['change_id']}: 20.00 EUR: the card account is closed"
    ]
    assert view["refunded"] is None


async def test_returns_after_a_change_are_checked_and_priced_against_the_lines_it_left(http, db) -> None:
    # given an order of two A and one B at 10.00, which the warehouse holds for a while before picking
    a, b, c = new_skus(3, prefix="CHG")
    await seed([("ams", a, 2), ("ams", b, 1), ("ams", c, 1)])
    held = {**ROTTERDAM, "line1": f"Coolsingel {uuid.uuid4().int % 10**9}", "postal_code": "HOLD 1"}
    document = order_document([(a, 2), (b, 1)], shipping_address=held)
    order_id: str = (await http.post("/v1/orders", json=document)).json()["order_id"]
    await wait_status(http, order_id, {"allocated"})

    # when the customer keeps one A, drops B and adds a C at 5.00 (to an address the warehouse does not hold): 15.00
    # due back, refunded
    lines = [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 0}, {"sku": c, "quantity": 1, "unit_price": "5.00"}]
    answer = await change(http, order_id, lines=lines, shipping_address=ROTTERDAM)
    assert (answer.status_code, answer.json()["due_back"]) == (202, "15.0000")
    (refund,) = await settled_refunds(order_id)
    assert (refund["status"], refund["amount"]) == ("succeeded", "15.00")
    # and the order is delivered as changed
    await known_delivered(http, db, order_id)

    # then B cannot be returned, and of A only the one unit the order holds now
    dropped = await ask_return(order_id, [return_line(b)])
    assert (dropped.status_code, dropped.json()["reasons"]) == (422, ["line 1: SKU " + b + " is not in the order"])
    too_many = await ask_return(order_id, [return_line(a, 2)])
    assert (too_many.status_code, too_many.json()["status"]) == (409, "rejected")
    assert too_many.json()["reasons"] == [f"{a}: 2 asked back, 1 returnable (1 shipped, 0 already asked back)"]
    # and the unit of A and the added C come back refunded at what they cost: 10.00 + 5.00
    both = await ask_return(order_id, [return_line(a), return_line(c)])
    assert both.status_code == 201, both.text
    refunds = await eventually(lambda: settled_refunds(order_id), lambda found: len(found) == 2)
    assert [(r["change_id"], r["return_id"], r["amount"], r["status"]) for r in refunds] == [
        (answer.json()["change_id"], None, "15.00", "succeeded"),
        (None, both.json()["return_id"], "15.00", "succeeded"),
    ]
    assert refunds[1]["explanation"][-1] == "refund: 15.00 EUR"
    # and never more than was paid: 2 x 10.00 + 10.00 + 4.95
    assert sum(Decimal(r["amount"]) for r in refunds) <= Decimal("34.95")


async def test_a_change_is_idempotent_by_its_id_and_bounded_to_the_channels_own_orders(http, db) -> None:
    sku = hold_sku()
    await seed([("ams", sku, 1)])
    order_id = await released_order(http, db, [(sku, 1)])
    body = {"change_id": f"chg-{uuid.uuid4()}", "service_level": "express"}

    first = await http.post(f"/v1/orders/{order_id}/changes", json=body)
    again = await http.post(f"/v1/orders/{order_id}/changes", json=body)
    other = await http.post(f"/v1/orders/{order_id}/changes", json={**body, "service_level": "overnight"})

    assert (first.status_code, first.json()["duplicate"]) == (202, False)
    assert (again.status_code, again.json()["duplicate"], again.json()["version"]) == (202, True, 1)
    assert other.status_code == 409 and "was used for another change" in other.json()["detail"]
    oversized = await http.post(
        f"/v1/orders/{order_id}/changes", json={**body, "lines": [{"sku": sku, "quantity": 1}] * 101}
    )
    assert oversized.status_code == 422
    view = await change_state(http, order_id, {"applied"})
    assert len(view["changes"]) == 1


# ---- a change racing the warehouse's `picked` report ----


async def warehouse_reports(db: Any, pick_task_id: uuid.UUID) -> list[str]:
    rows = await db.fetch("SELECT outcome FROM fulfillment.warehouse_reports WHERE pick_task_id = $1", pick_task_id)
    return [r["outcome"] for r in rows]


async def race_settled(http: httpx.AsyncClient, db: Any, order_id: str, task: uuid.UUID) -> tuple[str, list[str]]:
    """The change's final state and what became of the `picked` report, once both are decided."""
    view = await change_state(http, order_id, {"applied", "refused"})
    reports = await eventually(lambda: warehouse_reports(db, task), bool)
    return view["changes"][0]["state"], reports


async def test_a_change_racing_the_picked_report_exactly_one_wins_and_no_stock_leaks(http, db) -> None:
    run = uuid.uuid4().hex[:10]
    orders: list[tuple[str, uuid.UUID, str]] = []
    topic_start = await evidence.end_offsets(LOCAL.access(), evidence.watched_topics())
    started = time.time()
    # given orders released to Amsterdam, the same SKUs in Lyon too
    for i in range(4):
        sku = f"HOLD-{run}-{i}"
        await seed([("ams", sku, 1), ("lyo", sku, 1)])
        customer = {"email": f"chaos-{run}-{i}@example.test", "name": "Test Customer"}
        order_id = await released_order(http, db, [(sku, 1)], customer=customer)
        orders.append((order_id, await open_shipment(db, order_id, "ams"), sku))

    # when, for each, the warehouse reports it picked while the customer moves the delivery to Lyon
    async def race(order_id: str, task: uuid.UUID) -> None:
        picked = {
            "pick_task_id": str(task),
            "warehouse_id": "ams",
            "kind": "picked",
            "occurred_at": "2026-01-01T12:00:00+00:00",
        }
        await asyncio.gather(
            client.publish(topics.WAREHOUSE_EVENTS.name, [("ams", picked)]),
            change(http, order_id, shipping_address=LYON),
        )

    await asyncio.gather(*(race(order_id, task) for order_id, task, _ in orders))

    # then exactly one of them wins each race, and the loser is answered with its reason
    for order_id, task, sku in orders:
        state, reports = await race_settled(http, db, order_id, task)
        view = await order_view(http, order_id)
        if state == "applied":  # the change won: the task was withdrawn first, the pick report changes nothing
            assert reports == ["ignored: task cancelled"], (order_id, reports)
            assert await task_status(db, task) == "cancelled"
            assert ("lyo", sku, 1, 0, "open") in await shipments(db, order_id)  # re-routed with the change
        else:  # the pick won: the change is refused with the reason, the task picks on in Amsterdam
            assert (state, reports) == ("refused", ["applied: picked"]), (order_id, reports)
            assert view["changes"][0]["outcome"].startswith("the warehouse has started on it: shipment")
            assert await task_status(db, task) == "picked"
            assert await shipments(db, order_id) == [("ams", sku, 1, 0, "open")]
    # and no stock is leaked: the fault-injection suite's invariant checker agrees
    async with db.acquire() as conn:
        found = await evidence.gather(
            conn, LOCAL.access(), run, topic_start, LOCAL.state / "mail", LOCAL.state / "mail-repeats.jsonl", started
        )
    received = {(w, sku): 1 for _, _, sku in orders for w in ("ams", "lyo")}
    checks = [
        invariants.stock_balances(
            found.stock, received, found.reservations, found.shipped_by_fulfillment, found.capture, found.allocation
        ),
        invariants.pick_tasks_seen(found.pick_tasks, found.pick_task_records),
    ]
    assert [(c.name, c.violations) for c in checks] == [("stock", []), ("pick tasks", [])]
    assert (checks[0].counts["units received"], checks[0].counts["units reserved"]) == (8, 4)  # one unit per order
    await assert_books_balance(db, [sku for _, _, sku in orders])


# ---- late events of an older version ----


async def test_late_events_of_an_older_version_change_nothing(http, db) -> None:
    # given an order moved to Rotterdam (version 1), its task re-issued
    sku = hold_sku()
    await seed([("ams", sku, 1)])
    order_id = await released_order(http, db, [(sku, 1)])
    assert (await change(http, order_id, shipping_address=ROTTERDAM)).status_code == 202
    before = await change_state(http, order_id, {"applied"})
    reserved = await shipments(db, order_id)
    order = uuid.UUID(order_id)
    old_address = ev.Address.model_validate(before["changes"][0]["before"]["shipping_address"])

    async with (
        TopicReader(topics.PICK_TASKS.name) as tasks,
        TopicReader(topics.ALLOCATION_EVENTS.name) as decisions,
        TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes,
    ):
        # when fulfillment's acceptance of version 1 is delivered to allocation once more
        applied = await db.fetchrow(
            "SELECT change_id, ship_to, service_level, lines FROM fulfillment.order_changes WHERE order_id = $1", order
        )
        again = ev.OrderChangeAccepted(
            order_id=order,
            change_id=applied["change_id"],
            order_version=1,
            ship_to=ev.Address.model_validate(json.loads(applied["ship_to"])),
            service_level=applied["service_level"],
            lines=[ev.ItemQuantity(**line) for line in json.loads(applied["lines"])],
            withdrawn_shipments=[],
            reason="late",
        )
        await publish_event(topics.FULFILLMENT_EVENTS, again, order)
        # and a shipment reserved under version 0 (to the old address) reaches fulfillment only now
        late = ev.Shipment(shipment_id=uuid.uuid4(), warehouse_id="ams", lines=[ev.ItemQuantity(sku=sku, quantity=1)])
        stale = ev.OrderAllocated(
            order_id=order, shipments=[late], ship_to=old_address, service_level="standard", order_version=0
        )
        await publish_event(topics.ALLOCATION_EVENTS, stale, order)

        # then the old version's shipment is born withdrawn: no task goes to the warehouse with the old address,
        # and allocation is told it was withdrawn under the change
        found = await eventually(
            lambda: outcomes.bodies_for(order_id),
            lambda bodies: any(b["payload"].get("withdrawn_shipments") for b in bodies),
        )
        [withdrawn] = [b for b in found if b["payload"].get("withdrawn_shipments")]
        assert withdrawn["type"] == "OrderChangeAccepted"
        assert withdrawn["payload"]["withdrawn_shipments"] == [str(late.shipment_id)]
        assert await task_status(db, late.shipment_id) == "cancelled"
        reason = await db.fetchval(
            "SELECT cancel_reason FROM fulfillment.pick_tasks WHERE pick_task_id = $1", late.shipment_id
        )
        assert reason == f"superseded by change {applied['change_id']} (version 1)"
        await client.wait_caught_up("oms-allocation", [topics.FULFILLMENT_EVENTS.name])
        assert await pick_tasks_for(tasks, order_id) == []
        # (the only allocation event is the late one published here: allocation decided nothing new)
        assert [(b["type"], b["payload"]["order_version"]) for b in await decisions.bodies_for(order_id)] == [
            ("OrderAllocated", 0)
        ]
    # and allocation and capture stand as they were
    assert await shipments(db, order_id) == reserved
    after = await order_view(http, order_id)
    assert (after["version"], after["changes"][0]["state"], after["ordered"]) == (1, "applied", {sku: 1})
    await assert_books_balance(db, [sku])


async def city(db: Any, order_id: uuid.UUID) -> str:
    """Where capture's copy of the order ships to."""
    found: str = await db.fetchval(
        "SELECT document -> 'shipping_address' ->> 'city' FROM capture.orders WHERE order_id = $1", order_id
    )
    return found


async def test_allocations_word_that_overtakes_fulfillments_acceptance_still_changes_the_order(
    http, db, pipeline
) -> None:
    # given an order released to the warehouse, and fulfillment not reading for a while
    sku = hold_sku()
    await seed([("ams", sku, 1)])
    order_id = await released_order(http, db, [(sku, 1)])
    order = uuid.UUID(order_id)
    fulfillment = pipeline["fulfillment"]
    fulfillment.stop()
    try:
        # when the customer moves the order to Rotterdam (capture waits for fulfillment's acceptance)
        answer = await change(http, order_id, shipping_address=ROTTERDAM)
        assert (answer.status_code, answer.json()["state"]) == (202, "requested")
        change_id = answer.json()["change_id"]
        # and allocation's word that the change is applied reaches capture first (the two come on different topics)
        applied = ev.OrderChanged(
            order_id=order,
            change_id=change_id,
            order_version=1,
            ship_to=ev.Address.model_validate(ROTTERDAM),
            service_level="standard",
            lines=[ev.ItemQuantity(sku=sku, quantity=1)],
            reason="applied",
        )
        await publish_event(topics.ALLOCATION_EVENTS, applied, order)

        # then the order takes the change: its version and address, not just the change's state
        view = await change_state(http, order_id, {"applied"})
        assert (view["version"], await city(db, order)) == (1, "Rotterdam")
    finally:
        fulfillment.start()
        fulfillment.wait_ready()
    # and when fulfillment's acceptance comes after all, the order stays as changed, once
    await client.wait_caught_up("oms-capture", [topics.FULFILLMENT_EVENTS.name, topics.ALLOCATION_EVENTS.name])
    view = await order_view(http, order_id)
    assert (view["version"], await city(db, order), view["changes"][0]["state"]) == (1, "Rotterdam", "applied")
    assert [s["status"] for s in view["timeline"]].count("changed") == 1
