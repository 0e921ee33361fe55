"""Repeats change nothing: the same order submitted again, the same event delivered again."""

import asyncio
import uuid

from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import TopicReader, new_skus, seed, wait_status


async def test_the_same_order_submitted_five_times_at_once_is_one_order_one_reservation_one_pick_task(http, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 10)])
    document = order_document([(sku, 3)])
    async with TopicReader(topics.PICK_TASKS.name) as pick_tasks:
        responses = await asyncio.gather(*(http.post("/v1/orders", json=document) for _ in range(5)))
        assert {r.status_code for r in responses} == {202}
        order_ids = {r.json()["order_id"] for r in responses}
        assert len(order_ids) == 1
        assert sorted(r.json()["duplicate"] for r in responses) == [False, True, True, True, True]
        (order_id,) = order_ids
        await wait_status(http, order_id, {"delivered"})
        assert len(await pick_tasks.bodies_for(order_id)) == 1

    assert (
        await db.fetchval(
            "SELECT count(*) FROM capture.orders WHERE channel = $1 AND external_id = $2",
            document["channel"],
            document["external_id"],
        )
        == 1
    )
    reservations = await db.fetch(
        "SELECT sku, quantity FROM allocation.reservations WHERE order_id = $1", uuid.UUID(order_id)
    )
    assert [(r["sku"], r["quantity"]) for r in reservations] == [(sku, 3)]
    assert (
        await db.fetchval("SELECT count(*) FROM fulfillment.pick_tasks WHERE order_id = $1", uuid.UUID(order_id)) == 1
    )


async def test_a_redelivered_event_with_the_same_id_changes_nothing(pipeline, db) -> None:
    # given a SKU with 10 units in Amsterdam
    (sku,) = new_skus(1)
    await seed([("ams", sku, 10)])
    # when the same receipt event (same event id) arrives twice, even under another reference
    event_id = str(uuid.uuid4()).encode()
    for reference in ("first", "second"):
        await client.publish(
            topics.INVENTORY_ADJUSTMENTS.name,
            [
                (
                    f"ams:{sku}",
                    {
                        "warehouse_id": "ams",
                        "sku": sku,
                        "kind": "receipt",
                        "quantity": 5,
                        "reference": f"{reference}-{uuid.uuid4()}",
                    },
                )
            ],
            headers=[("event_id", event_id)],
        )
    await client.wait_caught_up("oms-allocation", [topics.INVENTORY_ADJUSTMENTS.name])
    # then it was applied once
    assert await db.fetchval("SELECT on_hand FROM allocation.stock WHERE warehouse_id = 'ams' AND sku = $1", sku) == 15
