"""Allocation on the real stack, each scenario from submission to a final or explained state: a split
across two warehouses, backorders released by receipts in arrival order, a short pick re-routed to
another warehouse, cancellations releasing stock, and a stock count short of what is reserved.

The simulated warehouses never pick a task with a `HOLD-` SKU (its stock stays reserved) and cannot
find `SHORT-<warehouse>-` SKUs in that warehouse (deploy/local/simulator.py)."""

import json
import uuid

from shared.backbone.kafka import encode
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document, validated_order
from tests.integration.allocation_steps import (
    allocation_order,
    assert_books_balance,
    one_holding_one_waiting,
    open_shipment,
    publish_count,
    publish_from_fulfillment,
    shipments,
    stock,
)
from tests.local import client
from tests.scenario import TopicReader, new_skus, seed, wait_status
from tests.waiting import eventually


async def test_an_order_no_single_warehouse_can_ship_is_split_across_two_and_delivered(http, db) -> None:
    # given one SKU only in Amsterdam and another only in Frankfurt
    a, b = new_skus(2)
    await seed([("ams", a, 5), ("fra", b, 5)])
    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        # when a customer in the Netherlands orders both
        response = await http.post("/v1/orders", json=order_document([(a, 2), (b, 1)]))
        order_id = response.json()["order_id"]

        # then allocation splits it into two shipments, nearest first, and says why
        [allocated] = await eventually(lambda: events.bodies_for(order_id), lambda found: len(found) >= 1)
    assert allocated["type"] == "OrderAllocated"
    payload = allocated["payload"]
    assert [(s["warehouse_id"], s["lines"]) for s in payload["shipments"]] == [
        ("ams", [{"sku": a, "quantity": 2}]),
        ("fra", [{"sku": b, "quantity": 1}]),
    ]
    assert payload["backordered"] == []
    assert payload["reason"].startswith("split into 2 shipments from ams, fra: no single warehouse holds every line")

    # and both shipments are picked, shipped and delivered, and leave the stock
    await wait_status(http, order_id, {"delivered"}, timeout=60)
    await eventually(lambda: shipments(db, order_id), lambda rows: {r[4] for r in rows} == {"shipped"})
    assert await shipments(db, order_id) == [("ams", a, 2, 0, "shipped"), ("fra", b, 1, 0, "shipped")]
    assert await stock(db, "ams", a) == (3, 0)
    assert await stock(db, "fra", b) == (4, 0)
    await assert_books_balance(db, [a, b])


async def test_a_receipt_releases_backorders_first_come_first_served(http, db) -> None:
    # given a SKU in the catalogue with no stock, and two customers waiting for it, one after the other
    (sku,) = new_skus(1)
    await seed([("ams", sku, 0)])
    first = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    waiting = await allocation_order(db, first, {"backordered"})
    assert waiting["reason"] == f"waiting for stock: {sku} short by 2"
    second = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    await allocation_order(db, second, {"backordered"})
    assert (await wait_status(http, first, {"backordered"}))["timeline"][-1]["detail"].startswith(waiting["reason"])

    # when two units arrive in Frankfurt
    await client.publish_receipts([("fra", sku, 2)], reference=f"receipt-{uuid.uuid4()}")

    # then the first order gets them and moves on, and the second still waits
    released = await allocation_order(db, first, {"allocated"})
    assert released["reason"].startswith("released from backorder: one shipment from fra")
    assert (await allocation_order(db, second, {"backordered"}))["backordered"] == {sku: 2}
    await wait_status(http, first, {"delivered"}, timeout=60)

    # when two more arrive, the second order gets them too
    await client.publish_receipts([("lyo", sku, 2)], reference=f"receipt-{uuid.uuid4()}")
    await allocation_order(db, second, {"allocated"})
    await wait_status(http, second, {"delivered"}, timeout=60)
    assert await shipments(db, first) == [("fra", sku, 2, 0, "shipped")]
    assert await shipments(db, second) == [("lyo", sku, 2, 0, "shipped")]
    await assert_books_balance(db, [sku])


async def test_a_short_pick_is_taken_out_of_stock_and_rerouted_to_another_warehouse(http, db) -> None:
    # given units in Amsterdam that the warehouse will not find, and the same SKU in Frankfurt
    sku = f"SHORT-ams-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 2), ("fra", sku, 3)])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    shipment = await open_shipment(db, order_id, "ams")

    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        # when fulfillment reports the short pick
        short = ev.ShortPickReported(
            order_id=uuid.UUID(order_id),
            shipment_id=shipment,
            warehouse_id="ams",
            missing=[ev.ItemQuantity(sku=sku, quantity=2)],
        )
        await publish_from_fulfillment(short, uuid.UUID(order_id))

        # then allocation takes the units out of Amsterdam's stock and routes them to Frankfurt
        [rerouted] = await eventually(lambda: events.bodies_for(order_id), bool)
    assert rerouted["type"] == "OrderAllocated"
    assert [(s["warehouse_id"], s["lines"]) for s in rerouted["payload"]["shipments"]] == [
        ("fra", [{"sku": sku, "quantity": 2}])
    ]
    assert rerouted["payload"]["reason"].startswith(f"short pick at ams ({sku} short by 2): one shipment from fra")
    assert await stock(db, "ams", sku) == (0, 0)

    # and the units ship from Frankfurt (what fulfillment does with the emptied Amsterdam task is its own)
    view = await wait_status(http, order_id, {"shipped", "delivered"}, timeout=60)
    assert any(
        step["status"] == "allocated" and (step["detail"] or "").startswith(rerouted["payload"]["reason"])
        for step in view["timeline"]
    ), view["timeline"]
    await eventually(lambda: stock(db, "fra", sku), lambda s: s == (1, 0))
    ams, fra = await shipments(db, order_id)
    assert ams[:4] == ("ams", sku, 2, 2)  # all short: nothing of it left to ship
    assert fra == ("fra", sku, 2, 0, "shipped")
    await assert_books_balance(db, [sku])


async def test_a_cancellation_releases_the_withdrawn_shipment_to_the_next_order_in_line(http, db) -> None:
    # given two units held in Amsterdam for a first order, and a second order waiting for one
    sku, first, shipment, second = await one_holding_one_waiting(http, db)

    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        # when fulfillment accepts the cancellation of the whole first order, withdrawing its pick task
        accepted = ev.CancellationAccepted(
            order_id=uuid.UUID(first), withdrawn_shipments=[shipment], reason="customer request"
        )
        await publish_from_fulfillment(accepted, uuid.UUID(first))

        # then allocation releases its reservation and says the order is cancelled
        [cancelled] = await eventually(lambda: events.bodies_for(first), bool)
        # and the released unit goes to the waiting order
        [allocated] = await eventually(lambda: events.bodies_for(second), bool)
    assert cancelled["type"] == "OrderCancelled"
    assert cancelled["payload"] == {"order_id": first, "lines": None, "reason": "customer request"}
    assert allocated["type"] == "OrderAllocated"
    assert allocated["payload"]["reason"].startswith("released from backorder: one shipment from ams")
    assert (await allocation_order(db, first, {"cancelled"}))["cancelled"] == {sku: 2}
    assert await shipments(db, first) == [("ams", sku, 2, 0, "released")]
    assert await stock(db, "ams", sku) == (2, 1)
    await assert_books_balance(db, [sku])


async def test_a_partial_cancellation_keeps_the_rest_of_the_withdrawn_shipment_reserved(http, db) -> None:
    sku, other = f"HOLD-{uuid.uuid4().hex[:12]}", f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("fra", sku, 5), ("fra", other, 5)])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 3), (other, 1)], country="DE"))).json()[
        "order_id"
    ]
    shipment = await open_shipment(db, order_id, "fra")

    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        accepted = ev.CancellationAccepted(
            order_id=uuid.UUID(order_id),
            lines=[ev.ItemQuantity(sku=sku, quantity=2)],
            withdrawn_shipments=[shipment],
            reason="two too many",
        )
        await publish_from_fulfillment(accepted, uuid.UUID(order_id))
        cancelled, kept = await eventually(lambda: events.bodies_for(order_id), lambda found: len(found) >= 2)

    assert cancelled["payload"]["lines"] == [{"sku": sku, "quantity": 2}]
    assert kept["type"] == "OrderAllocated"
    [new_shipment] = kept["payload"]["shipments"]
    assert new_shipment["warehouse_id"] == "fra" and new_shipment["shipment_id"] != str(shipment)
    assert sorted((line["sku"], line["quantity"]) for line in new_shipment["lines"]) == sorted([(sku, 1), (other, 1)])
    assert await stock(db, "fra", sku) == (5, 1)
    assert (await allocation_order(db, order_id, {"allocated"}))["cancelled"] == {sku: 2}
    await assert_books_balance(db, [sku, other])


async def test_a_cancellation_that_overtakes_its_order_is_applied_when_the_order_arrives(http, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    order_id = uuid.uuid4()
    # when fulfillment's acceptance reaches allocation before capture's validated order does
    await publish_from_fulfillment(
        ev.CancellationAccepted(order_id=order_id, withdrawn_shipments=[], reason="changed my mind"), order_id
    )
    await client.wait_caught_up("oms-allocation", [topics.FULFILLMENT_EVENTS.name])
    validated = validated_order(order_id, sku, 2)
    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        envelope = wrap(validated, producer="capture", order_id=order_id)
        await client.publish(topics.ORDERS_VALIDATED.name, [(str(order_id), encode(envelope))])
        # then the order is cancelled at once and nothing is reserved
        [cancelled] = await eventually(lambda: events.bodies_for(str(order_id)), bool)
    assert cancelled["type"] == "OrderCancelled" and cancelled["payload"]["lines"] is None
    assert (await allocation_order(db, order_id, {"cancelled"}))["cancelled"] == {sku: 2}
    assert await stock(db, "ams", sku) == (5, 0)


async def test_a_count_below_what_is_reserved_is_reported_and_keeps_the_reserved_units(http, db) -> None:
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 5)])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 4)]))).json()["order_id"]
    await open_shipment(db, order_id, "ams")

    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        # when the warehouse counts one unit where four are promised
        await publish_count("ams", sku, 1)
        # then allocation reports it, keyed by warehouse and SKU, and keeps on hand at what is reserved
        key = f"ams:{sku}".encode()
        seen = await eventually(events.read, lambda records: any(r.key == key for r in records))
    [report] = [r for r in seen if r.key == key]
    body = json.loads(report.value)
    assert body["type"] == "StockCountShort"
    assert {k: body["payload"][k] for k in ("warehouse_id", "sku", "counted", "reserved")} == {
        "warehouse_id": "ams",
        "sku": sku,
        "counted": 1,
        "reserved": 4,
    }
    assert await stock(db, "ams", sku) == (4, 4)
    await assert_books_balance(db, [sku])
