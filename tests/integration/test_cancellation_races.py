"""Cancellation races, each pinned on the real stack by playing its interleaving deliberately:
- allocation: fulfillment accepts the whole cancellation before it has seen a shipment (the first allocation,
  or a backorder released meanwhile), and withdraws that shipment when it arrives: its stock is released;
- fulfillment: one instance releases a pick task while another commits the whole order's cancellation: the
  release waits for the decision and the task is born withdrawn;
- capture: a channel's cancel request read before its order is held, and applied when the order arrives,
  also when the two are handled at the same moment by two instances; one no order claims in time expires.

Where another service's decision is part of the race, the test publishes its event itself, in its envelope;
where two instances race, two connections run the handlers as the consumer does (prepare, then handle) and
the test holds one transaction open while the other runs."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from deploy.local import client
from services.fulfillment.handlers import FulfillmentHandlers
from services.fulfillment.settings import FulfillmentSettings
from shared import events as ev
from shared import topics
from shared.db import connect
from shared.envelope import wrap
from shared.kafka import Inbound, Origin
from tests.factories import order_document
from tests.integration.allocation_steps import (
    allocation_order,
    assert_books_balance,
    open_shipment,
    publish_from_fulfillment,
    shipments,
    stock,
)
from tests.scenario import TopicReader, new_skus, seed
from tests.waiting import eventually

# ---- allocation ----


async def test_a_shipment_withdrawn_after_fulfillment_accepted_the_whole_cancellation_is_released(http, db) -> None:
    # given two units held in Amsterdam for a first order (the warehouse sits on HOLD- SKUs), and a second
    # order waiting for one unit
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 2)])
    first = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    shipment = await open_shipment(db, first, "ams")
    second = (await http.post("/v1/orders", json=order_document([(sku, 1)]))).json()["order_id"]
    await allocation_order(db, second, {"backordered"})

    async with TopicReader(topics.ALLOCATION_EVENTS.name) as events:
        # when fulfillment accepted the whole cancellation before the allocation reached it (nothing to withdraw)
        nothing_yet = ev.CancellationAccepted(order_id=uuid.UUID(first), withdrawn_shipments=[], reason="too slow")
        await publish_from_fulfillment(nothing_yet, uuid.UUID(first))
        # and withdraws the shipment once it arrives, the order being cancelled already
        born_withdrawn = ev.CancellationAccepted(
            order_id=uuid.UUID(first), withdrawn_shipments=[shipment], reason="too slow"
        )
        await publish_from_fulfillment(born_withdrawn, uuid.UUID(first))

        # then the shipment's units are released and go to the waiting order
        [allocated] = await eventually(lambda: events.bodies_for(second), bool)
    assert allocated["type"] == "OrderAllocated"
    assert allocated["payload"]["reason"].startswith("released from backorder: one shipment from ams")
    assert await shipments(db, first) == [("ams", sku, 2, 0, "released")]
    assert (await allocation_order(db, first, {"cancelled"}))["cancelled"] == {sku: 2}
    assert await stock(db, "ams", sku) == (2, 1)
    await assert_books_balance(db, [sku])


async def test_a_backorder_released_while_the_whole_order_is_cancelled_is_released_when_withdrawn(http, db) -> None:
    # given an order waiting for stock nobody holds
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("fra", sku, 0)])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    await allocation_order(db, order_id, {"backordered"})

    # when a receipt releases it into a new shipment
    await client.publish_receipts([("fra", sku, 2)], reference=f"receipt-{uuid.uuid4()}")
    shipment = await open_shipment(db, order_id, "fra")
    # while fulfillment, which has not seen that shipment, accepts the whole cancellation, and withdraws the
    # shipment as soon as it arrives
    for withdrawn in ([], [shipment]):
        accepted = ev.CancellationAccepted(order_id=uuid.UUID(order_id), withdrawn_shipments=withdrawn, reason="late")
        await publish_from_fulfillment(accepted, uuid.UUID(order_id))

    # then the released units are cancelled and nothing stays reserved for the order
    await eventually(lambda: shipments(db, order_id), lambda rows: rows == [("fra", sku, 2, 0, "released")])
    assert (await allocation_order(db, order_id, {"cancelled"}))["cancelled"] == {sku: 2}
    assert await stock(db, "fra", sku) == (2, 0)
    await assert_books_balance(db, [sku])


# ---- two instances side by side: each with its own connection, handlers run as the consumer runs them ----


@dataclass
class Instance:
    conn: asyncpg.Connection
    transaction: Any
    outbox_from: int
    committed: bool = False

    async def published(self) -> list[tuple[str, dict[str, Any]]]:
        """(type, payload) of what this instance's transaction wrote to its outbox."""
        rows = await self.conn.fetch("SELECT body FROM outbox WHERE id > $1 ORDER BY id", self.outbox_from)
        return [(body["type"], body["payload"]) for body in (json.loads(r["body"]) for r in rows)]

    async def commit(self, publish: bool = True) -> None:
        """Commit; without `publish`, the events written stay out of the running pipeline (they concern an
        order that exists nowhere else)."""
        if not publish:
            await self.conn.execute("DELETE FROM outbox WHERE id > $1", self.outbox_from)
        await self.transaction.commit()
        self.committed = True


@pytest.fixture
async def instances(stack: None) -> AsyncIterator[Any]:
    """Connections as two instances of a service open them (its role, its schema), each in a transaction;
    whatever the test does not commit is rolled back."""
    opened: list[Instance] = []

    async def open_two(settings: Any) -> tuple[Instance, Instance]:
        for _ in range(2):
            conn = await connect(settings)
            transaction = conn.transaction()
            await transaction.start()
            opened.append(Instance(conn, transaction, await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")))
        return opened[-2], opened[-1]

    yield open_two
    for instance in opened:
        if not instance.committed:
            await instance.transaction.rollback()
        await instance.conn.close()


async def handle(handlers: Any, conn: asyncpg.Connection, topic: topics.Topic, payload: ev.Contract) -> None:
    """As the consumer does: the batch's preparation (its locks), then the handler."""
    envelope = wrap(payload, producer=topic.writer, order_id=getattr(payload, "order_id", None))
    item = Inbound(Origin(topic.name, 0, 0, None, None, ()), envelope, payload)
    if hasattr(handlers, "prepare"):
        await handlers.prepare(conn, [item])
    await handlers.routes()[topic.name](conn, item)


async def waits_for_a_lock(db: asyncpg.Pool, conn: asyncpg.Connection) -> bool:
    return bool(
        await db.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", conn.get_server_pid())
    )


async def blocked_until(db: asyncpg.Pool, conn: asyncpg.Connection, work: "asyncio.Task[None]") -> None:
    """Wait until `work` (on `conn`) is done or waits for a lock; it must be the latter."""
    await eventually(lambda: waits_for_a_lock(db, conn), lambda waiting: waiting or work.done(), timeout=10)
    assert not work.done(), "ran on without waiting for the other instance's decision"


# ---- fulfillment ----


async def test_a_pick_task_released_while_another_instance_cancels_the_whole_order_is_born_withdrawn(
    instances, db
) -> None:
    settings = FulfillmentSettings()
    handlers = FulfillmentHandlers(settings.shipping_rules(), settings.warehouses(), settings.clock())
    canceller, releaser = await instances(settings)
    order_id = uuid.uuid4()
    shipment = ev.Shipment(
        shipment_id=uuid.uuid4(), warehouse_id="ams", lines=[ev.ItemQuantity(sku=new_skus(1)[0], quantity=1)]
    )
    # given one instance deciding the cancellation of the whole order, with no pick task released yet
    request = ev.OrderCancellationRequested(
        order_id=order_id, reason="changed my mind", requested_at=settings.clock()()
    )
    await handle(handlers, canceller.conn, topics.ORDER_CANCELLATIONS, request)
    assert [kind for kind, _ in await canceller.published()] == ["CancellationAccepted"]

    # when another instance reads the order's allocation before that decision has committed
    allocated = ev.OrderAllocated(
        order_id=order_id,
        shipments=[shipment],
        ship_to=ev.Address.model_validate(order_document()["shipping_address"]),
        service_level="standard",
    )
    release = asyncio.create_task(handle(handlers, releaser.conn, topics.ALLOCATION_EVENTS, allocated))

    # then it waits for the decision
    await blocked_until(db, releaser.conn, release)
    await canceller.commit(publish=False)
    await release
    # and the pick task is born withdrawn: nothing goes to the warehouse, and allocation hears it was withdrawn
    published = await releaser.published()
    assert [kind for kind, _ in published] == ["CancellationAccepted"], published
    assert published[0][1]["withdrawn_shipments"] == [str(shipment.shipment_id)]
    status = await releaser.conn.fetchval("SELECT status FROM pick_tasks WHERE pick_task_id = $1", shipment.shipment_id)
    assert status == "cancelled"
