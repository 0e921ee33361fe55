"""Issue-level scenarios across all four services with nothing standing in: the real simulator, fulfillment,
allocation and capture answer each other."""

import json
import uuid

from shared.contracts import topics
from tests.factories import order_document
from tests.integration.allocation_steps import assert_books_balance, stock
from tests.scenario import TopicReader, mail_for, seed, wait_status
from tests.waiting import eventually


async def test_cancel_before_pick_withdraws_the_pick_task_releases_the_stock_and_tells_the_customer(http, db) -> None:
    # given five units in Amsterdam of a SKU the simulated warehouse sits on (it never picks HOLD- tasks)
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 5)])
    async with TopicReader(topics.PICK_TASKS.name) as pick_tasks:
        response = await http.post("/v1/orders", json=order_document([(sku, 2)]))
        order_id = response.json()["order_id"]
        (released,) = await eventually(lambda: pick_tasks.bodies_for(order_id), bool)
        assert released["type"] == "PickTaskReleased"
        assert await stock(db, "ams", sku) == (5, 2)

        # when the customer cancels before the warehouse has picked
        cancel = await http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "ordered twice"})
        assert cancel.status_code == 202

        # then the warehouse is told to stop picking that task
        found = await eventually(lambda: pick_tasks.bodies_for(order_id), lambda bodies: len(bodies) >= 2)
        withdrawn = found[1]
        assert withdrawn["type"] == "PickTaskCancelled"
        assert withdrawn["payload"]["pick_task_id"] == released["payload"]["pick_task_id"]
        record = [r for r in pick_tasks.seen if order_id in r.value.decode()][-1]
        assert record.key == b"ams" and json.loads(record.value)["type"] == "PickTaskCancelled"

    # and the order ends cancelled, its units back on the shelf for others, and the customer told once
    view = await wait_status(http, order_id, {"cancelled"})
    assert view["cancelled"] == {sku: 2}
    assert await eventually(lambda: stock(db, "ams", sku), lambda s: s == (5, 0))
    await assert_books_balance(db, [sku])
    assert await eventually(lambda: mail_for(order_id), lambda kinds: "cancelled" in kinds) == [
        "cancelled",
        "confirmed",
    ]


async def test_a_short_pick_in_one_warehouse_is_rerouted_and_delivered_from_another(http, db) -> None:
    # given two units in Amsterdam the warehouse will not find (SHORT-ams-), and three in Frankfurt
    sku = f"SHORT-ams-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 2), ("fra", sku, 3)])

    # when a Dutch customer orders two (Amsterdam is nearest) and the Amsterdam warehouse reports them missing
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)], country="NL"))).json()["order_id"]

    # then the order is delivered from Frankfurt, and the missing units are out of Amsterdam's books
    view = await wait_status(http, order_id, {"delivered"}, timeout=60)
    steps = [step["status"] for step in view["timeline"]]
    assert "short_picked" in steps or any("short" in (step["detail"] or "") for step in view["timeline"])
    assert await stock(db, "ams", sku) == (0, 0)
    assert await eventually(lambda: stock(db, "fra", sku), lambda s: s == (1, 0))
    shipped_from = await db.fetch(
        "SELECT warehouse_id FROM fulfillment.shipments s JOIN fulfillment.pick_tasks p USING (pick_task_id)"
        " WHERE s.order_id = $1",
        uuid.UUID(order_id),
    )
    assert [r["warehouse_id"] for r in shipped_from] == ["fra"]
    await assert_books_balance(db, [sku])
