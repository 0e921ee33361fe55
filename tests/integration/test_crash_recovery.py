"""Fault injection: a service killed with SIGKILL after its database commit but before its offset commit
gets the same records again when it restarts; the inbox makes that harmless and nothing is lost."""

import signal
import uuid

from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import new_skus, seed, wait_status
from tests.waiting import eventually

ALLOCATION_TOPICS = [
    topics.ORDERS_VALIDATED.name,
    topics.INVENTORY_ADJUSTMENTS.name,
    topics.CATALOG_PRODUCTS.name,
    topics.FULFILLMENT_EVENTS.name,
]


async def test_allocation_killed_between_commits_reserves_once_after_restart(http, db, pipeline) -> None:
    allocation = pipeline["allocation"]
    (sku,) = new_skus(1)
    await seed([("ams", sku, 10)])
    await client.wait_caught_up("oms-allocation", ALLOCATION_TOPICS)

    # given allocation running with a fault: it dies right after committing its first batch to the database
    allocation.stop()
    allocation.env = {"OMS_FAULT_KILL_AFTER_DB_COMMIT": "true"}
    allocation.start()
    try:
        # when an order arrives
        response = await http.post("/v1/orders", json=order_document([(sku, 4)]))
        order_id = uuid.UUID(response.json()["order_id"])

        # then allocation committed the reservation and was killed before committing the offset
        await eventually(allocation.pid, lambda pid: pid is None, timeout=60)
        assert allocation.exit_status() == -signal.SIGKILL
        assert await db.fetchval("SELECT sum(quantity) FROM allocation.reservations WHERE order_id = $1", order_id) == 4
        assert await client.lag("oms-allocation", [topics.ORDERS_VALIDATED.name]) >= 1
    finally:
        # when it restarts without the fault
        allocation.env = {}
        allocation.start()
    allocation.wait_ready()
    await client.wait_caught_up("oms-allocation", ALLOCATION_TOPICS, timeout=60)

    # then the redelivered event changed nothing, and the order still flows to the end
    await wait_status(http, str(order_id), {"delivered"})
    reservations = await db.fetch(
        "SELECT sku, quantity, status FROM allocation.reservations WHERE order_id = $1", order_id
    )
    assert [(r["sku"], r["quantity"], r["status"]) for r in reservations] == [(sku, 4, "shipped")]
    assert await db.fetchval("SELECT on_hand FROM allocation.stock WHERE warehouse_id = 'ams' AND sku = $1", sku) == 6
    assert await db.fetchval("SELECT count(*) FROM fulfillment.pick_tasks WHERE order_id = $1", order_id) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM notifications.messages WHERE order_id = $1 AND kind = 'shipped'", order_id
        )
        == 1
    )
