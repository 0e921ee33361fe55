"""Dropship on the real stack: a supplier's SKU goes out as a purchase order (the end customer's address, a ship-by
date, a packing slip without prices), is acknowledged, shipped by the supplier with its tracking number and delivered
like any parcel; a rejected line is routed to a warehouse that has it; an unanswered one times out and waits for stock
(a late acknowledgement changes nothing); a mixed order is delivered in two shipments. The simulator plays the
suppliers (deploy/local/simulator.py): `REJECT` SKUs are rejected, `SLOW` SKUs answered after 15 s.

The local stack's dropship file (deploy/config/dropship.json): `DS-ACME-*` from acme-direct (answer within an hour,
ship within 2 business days), `DS-NORDIC-*` from nordic-drop (answer within 5 s)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import TopicReader, mail_for, new_skus, seed, wait_status
from tests.waiting import eventually


async def catalogue(*skus: str) -> None:
    """Products capture and allocation know, with no stock anywhere (a supplier ships them)."""
    await client.publish_products(set(skus))
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    await client.wait_caught_up("oms-allocation", [topics.CATALOG_PRODUCTS.name])


def dropship_sku(supplier: str, mark: str = "") -> str:
    return f"DS-{supplier}-{mark}{uuid.uuid4().hex[:10]}"


async def purchase_orders(db: asyncpg.Pool, order_id: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM fulfillment.purchase_orders WHERE order_id = $1", uuid.UUID(order_id))


async def reports(db: asyncpg.Pool, purchase_order_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await db.fetch(
        "SELECT kind, outcome FROM fulfillment.supplier_reports WHERE purchase_order_id = $1 ORDER BY recorded_at",
        purchase_order_id,
    )
    return [(r["kind"], r["outcome"]) for r in rows]


async def stock(db: asyncpg.Pool, sku: str) -> dict[str, tuple[int, int]]:
    rows = await db.fetch("SELECT warehouse_id, on_hand, reserved FROM allocation.stock WHERE sku = $1", sku)
    return {r["warehouse_id"]: (r["on_hand"], r["reserved"]) for r in rows if r["on_hand"] or r["reserved"]}


async def allocation_order(db: asyncpg.Pool, order_id: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT status, dropship FROM allocation.orders WHERE order_id = $1", uuid.UUID(order_id))
    assert row is not None
    return {"status": row["status"], "dropship": json.loads(row["dropship"])}


def steps(view: dict[str, Any]) -> list[str]:
    return [step["status"] for step in view["timeline"]]


async def test_a_dropship_line_goes_out_as_a_purchase_order_is_acknowledged_shipped_by_the_supplier_and_delivered(
    http, db
) -> None:
    # given a SKU acme-direct ships itself, in no warehouse
    sku = dropship_sku("ACME")
    await catalogue(sku)
    async with TopicReader(topics.PURCHASE_ORDERS.name, principal="suppliers") as supplier:
        # when a customer orders two units at 25.00
        document = order_document([(sku, 2)], unit_price="25.00")
        response = await http.post("/v1/orders", json=document)
        order_id = response.json()["order_id"]

        # then the supplier reads one purchase order, keyed by its id, for the end customer, to ship by a date
        (issued,) = await eventually(lambda: supplier.bodies_for(order_id), lambda found: len(found) >= 1)
        assert [r.key for r in supplier.seen if order_id in r.value.decode()] == [b"acme-direct"]
    po = issued["payload"]
    assert po["supplier_id"] == "acme-direct" and po["lines"] == [{"sku": sku, "quantity": 2}]
    address = document["shipping_address"]
    assert {k: po["ship_to"][k] for k in address} == address
    assert date.fromisoformat(po["ship_by"]) > datetime.now(UTC).date()
    assert datetime.fromisoformat(po["answer_by"]) > datetime.fromisoformat(po["issued_at"])
    # and neither the packing slip nor anything else on it carries a price
    slip = po["packing_slip"]
    assert slip["order_id"] == order_id and slip["recipient"] == address["name"] and slip["lines"] == po["lines"]
    assert "price" not in json.dumps(po) and "25.00" not in json.dumps(po)

    # and the supplier's acknowledgement and shipment notice take the order to delivered like any parcel
    view = await wait_status(http, order_id, {"delivered"})
    assert steps(view) == ["received", "validated", "allocated", "shipped", "delivered"]
    assert view["shipped"] == {sku: 2}
    (row,) = await purchase_orders(db, order_id)
    assert row["status"] == "shipped"
    assert await reports(db, row["purchase_order_id"]) == [
        ("acknowledged", "applied: acknowledged"),
        ("shipped", "applied: shipped"),
    ]
    parcel = await db.fetchrow(
        "SELECT carrier, tracking_number, delivered_at FROM fulfillment.shipments WHERE pick_task_id = $1",
        row["purchase_order_id"],
    )
    assert parcel["carrier"] == "parcelnet" and parcel["tracking_number"].startswith("ACME-DIRECT-")
    assert parcel["delivered_at"] is not None
    shipped_step = next(s for s in view["timeline"] if s["status"] == "shipped")
    assert parcel["tracking_number"] in shipped_step["detail"]
    # and the customer got the same mails as for a warehouse's parcel
    assert await eventually(lambda: mail_for(order_id), lambda kinds: len(kinds) >= 3) == [
        "confirmed",
        "delivered",
        "shipped",
    ]
    # and the books balance: no warehouse stock was touched, the units stayed with the supplier
    assert await stock(db, sku) == {}
    assert (await allocation_order(db, order_id))["dropship"] == {"acme-direct": {sku: 2}}


async def test_a_rejected_dropship_line_is_rerouted_to_a_warehouse_that_has_it(http, db) -> None:
    # given a SKU acme-direct will reject, of which Lyon has 5
    sku = dropship_sku("ACME", "REJECT-")
    await seed([("lyo", sku, 5)])
    async with TopicReader(topics.PICK_TASKS.name) as pick_tasks:
        # when a customer orders 2
        response = await http.post("/v1/orders", json=order_document([(sku, 2)]))
        order_id = response.json()["order_id"]

        # then after the rejection Lyon gets the pick task, and the order is delivered from there
        (task,) = await eventually(lambda: pick_tasks.bodies_for(order_id), lambda found: len(found) >= 1, timeout=45)
    assert task["payload"]["warehouse_id"] == "lyo" and task["payload"]["lines"] == [{"sku": sku, "quantity": 2}]
    view = await wait_status(http, order_id, {"delivered"})
    assert steps(view)[:4] == ["received", "validated", "allocated", "dropship_declined"]
    assert "acme-direct rejected" in next(s["detail"] for s in view["timeline"] if s["status"] == "dropship_declined")
    (row,) = await purchase_orders(db, order_id)
    assert row["status"] == "rejected"
    assert await reports(db, row["purchase_order_id"]) == [("rejected", "applied: rejected")]
    # and the books balance: the 2 units left Lyon's stock, nothing stays reserved or with the supplier
    assert await stock(db, sku) == {"lyo": (3, 0)}
    assert (await allocation_order(db, order_id))["dropship"] == {}


async def test_an_unanswered_purchase_order_times_out_its_line_waits_for_stock_and_a_late_answer_changes_nothing(
    http, db
) -> None:
    # given a SKU nordic-drop answers only after 15 s (its answer timeout is 5 s), in no warehouse
    sku = dropship_sku("NORDIC", "SLOW-")
    await catalogue(sku)
    async with TopicReader(topics.PURCHASE_ORDERS.name, principal="suppliers") as supplier:
        # when a customer orders one
        response = await http.post("/v1/orders", json=order_document([(sku, 1)]))
        order_id = response.json()["order_id"]

        # then the purchase order times out: the supplier is told it is cancelled, and the line waits for stock
        found = await eventually(lambda: supplier.bodies_for(order_id), lambda found: len(found) >= 2, timeout=30)
    assert [body["type"] for body in found] == ["PurchaseOrderIssued", "PurchaseOrderCancelled"]
    await wait_status(http, order_id, {"backordered"})
    (row,) = await purchase_orders(db, order_id)
    assert row["status"] == "timed_out"

    # and the late acknowledgement is recorded and ignored: nothing ships from the supplier
    late = await eventually(lambda: reports(db, row["purchase_order_id"]), bool, timeout=30)
    assert late == [("acknowledged", "ignored: purchase order timed_out")]
    assert (await allocation_order(db, order_id))["status"] == "backordered"
    assert (await allocation_order(db, order_id))["dropship"] == {}

    # and once a warehouse receives it, the order is delivered from there, once
    await client.publish_receipts([("ams", sku, 1)], reference=f"r-{uuid.uuid4()}")
    view = await wait_status(http, order_id, {"delivered"})
    assert view["shipped"] == {sku: 1}
    assert await db.fetchval("SELECT count(*) FROM fulfillment.shipments WHERE order_id = $1", uuid.UUID(order_id)) == 1
    assert await stock(db, sku) == {}


async def test_a_mixed_order_is_delivered_in_two_shipments_one_from_the_warehouse_one_from_the_supplier(
    http, db
) -> None:
    # given a SKU Amsterdam holds and one acme-direct ships
    (mug,) = new_skus(1)
    sofa = dropship_sku("ACME")
    await seed([("ams", mug, 5)])
    await catalogue(sofa)
    # when a customer orders both
    response = await http.post("/v1/orders", json=order_document([(mug, 1), (sofa, 1)]))
    order_id = response.json()["order_id"]
    # then it is delivered in two shipments: Amsterdam's parcel and the supplier's
    view = await wait_status(http, order_id, {"delivered"})
    assert view["shipped"] == {mug: 1, sofa: 1}
    parcels = await db.fetch(
        "SELECT pick_task_id, carrier, delivered_at FROM fulfillment.shipments WHERE order_id = $1",
        uuid.UUID(order_id),
    )
    (po,) = await purchase_orders(db, order_id)
    assert len(parcels) == 2 and all(p["delivered_at"] is not None for p in parcels)
    assert po["purchase_order_id"] in {p["pick_task_id"] for p in parcels}
    assert steps(view).count("delivered") == 1 and steps(view)[-1] == "delivered"
    # and the books balance: Amsterdam's unit left its stock, the sofa stayed with the supplier
    assert await stock(db, mug) == {"ams": (4, 0)}
    assert await stock(db, sofa) == {}


async def test_the_remainder_of_a_partial_acceptance_is_routed_to_a_warehouse_and_both_parcels_delivered(
    http, db
) -> None:
    # given a SKU acme-direct accepts one unit less of, of which Amsterdam has 5
    sku = dropship_sku("ACME", "PARTIAL-")
    await seed([("ams", sku, 5)])
    # when a customer orders 3
    response = await http.post("/v1/orders", json=order_document([(sku, 3)]))
    order_id = response.json()["order_id"]
    # then the supplier ships the 2 it accepted, Amsterdam the third, and the order is delivered
    view = await wait_status(http, order_id, {"delivered"})
    assert view["shipped"] == {sku: 3}
    (po,) = await purchase_orders(db, order_id)
    assert po["status"] == "shipped" and json.loads(po["held"]) == [{"sku": sku, "quantity": 2}]
    assert await reports(db, po["purchase_order_id"]) == [
        ("partially_accepted", "applied: partially_accepted"),
        ("shipped", "applied: shipped"),
    ]
    assert await stock(db, sku) == {"ams": (4, 0)}
    assert (await allocation_order(db, order_id))["dropship"] == {"acme-direct": {sku: 2}}


async def test_cancelling_an_order_withdraws_its_open_purchase_order_and_the_suppliers_late_answer_changes_nothing(
    http, db
) -> None:
    # given an order whose purchase order acme-direct has not answered yet (it answers after 15 s)
    sku = dropship_sku("ACME", "SLOW-")
    await catalogue(sku)
    async with TopicReader(topics.PURCHASE_ORDERS.name, principal="suppliers") as supplier:
        response = await http.post("/v1/orders", json=order_document([(sku, 1)]))
        order_id = response.json()["order_id"]
        await wait_status(http, order_id, {"allocated"})
        # when the customer cancels it
        cancel = await http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "changed my mind"})
        assert cancel.status_code == 202
        # then the order is cancelled and the supplier told the purchase order is off
        await wait_status(http, order_id, {"cancelled"})
        found = await eventually(lambda: supplier.bodies_for(order_id), lambda found: len(found) >= 2)
    assert [body["type"] for body in found] == ["PurchaseOrderIssued", "PurchaseOrderCancelled"]
    (row,) = await purchase_orders(db, order_id)
    assert row["status"] == "cancelled"
    assert (await allocation_order(db, order_id)) == {"status": "cancelled", "dropship": {}}
    # and the supplier's late acknowledgement is recorded and changes nothing
    late = await eventually(lambda: reports(db, row["purchase_order_id"]), bool, timeout=30)
    assert late == [("acknowledged", "ignored: purchase order cancelled")]
    assert (await http.get(f"/v1/orders/{order_id}")).json()["status"] == "cancelled"
