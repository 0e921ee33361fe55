"""The integrators' kit on the real broker: an order handed in through the channel adapter flows to delivered,
and a warehouse worker of its own, started after its task was released, gets that task and ships it with its
reports (the simulated warehouses, built on the same kit, carry every other end-to-end test)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from oms_kit import ChannelAdapter, DeadLetterFile, PickTaskReleased, SubmittedOrder, WarehouseWorker
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import new_skus, order_view, seed, wait_status
from tests.waiting import eventually


def timeline(view: dict[str, Any]) -> list[str]:
    return [step["status"] for step in view["timeline"]]


async def order_id_of(db, external_id: str) -> str:
    async def lookup() -> str | None:
        found = await db.fetchval("SELECT order_id FROM capture.orders WHERE external_id = $1", external_id)
        return None if found is None else str(found)

    found: str = await eventually(lookup, bool)
    return found


async def test_an_order_handed_in_through_the_kit_is_taken_and_delivered(http, db) -> None:
    # given stock, and a channel adapter built on the kit
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    order = SubmittedOrder.model_validate(order_document([(sku, 2)]))

    # when it hands the order in
    async with ChannelAdapter(LOCAL.kit_connection("channel-adapters"), channel=order.channel) as adapter:
        await adapter.submit(order)

    # then the OMS takes it and it reaches delivered
    order_id = await order_id_of(db, order.external_id)
    view = await wait_status(http, order_id, {"delivered"})
    assert view["ordered"] == {sku: 2} and view["shipped"] == {sku: 2}


async def test_a_warehouse_worker_started_after_the_release_gets_the_task_and_its_reports_ship_the_order(
    http, db, tmp_path
) -> None:
    # given an order whose task the simulated warehouses never pick (a HOLD- SKU), released before our worker starts
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 3)])
    response = await http.post("/v1/orders", json=order_document([(sku, 1)]))
    order_id = response.json()["order_id"]
    await eventually(lambda: order_view(http, order_id), lambda v: "released" in timeline(v))

    # when a warehouse worker of its own group starts, and picks and packs the task it is handed
    letters = DeadLetterFile(tmp_path / "dead-letters.jsonl")
    group = f"warehouses-kit-{uuid.uuid4()}"
    worker = WarehouseWorker(LOCAL.kit_connection("warehouses"), group=group, dead_letters=letters)
    handled: asyncio.Queue[PickTaskReleased] = asyncio.Queue()

    @worker.on_pick_task
    async def take(task: PickTaskReleased) -> None:
        if str(task.order_id) == order_id:
            await handled.put(task)

    async with worker:
        task = await asyncio.wait_for(handled.get(), timeout=60)
        await worker.picked(task)
        await worker.packed(task, 450)

        # then the order ships and is delivered like any other
        view = await wait_status(http, order_id, {"delivered"})
    assert timeline(view)[-2:] == ["shipped", "delivered"]
    assert task.lines[0].sku == sku and task.warehouse_id == "ams"
    assert letters.read() == []
