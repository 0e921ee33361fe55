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
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.capture.handlers import CaptureHandlers
from services.capture.settings import CaptureSettings
from services.fulfillment.handlers import FulfillmentHandlers
from services.fulfillment.settings import FulfillmentSettings
from shared.backbone.db import connect
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document
from tests.integration.allocation_steps import (
    allocation_order,
    assert_books_balance,
    one_holding_one_waiting,
    open_shipment,
    publish_from_fulfillment,
    shipments,
    stock,
)
from tests.local import client
from tests.scenario import TopicReader, new_skus, seed, wait_status
from tests.waiting import eventually

# ---- allocation ----


async def test_a_shipment_withdrawn_after_fulfillment_accepted_the_whole_cancellation_is_released(http, db) -> None:
    # given two units held in Amsterdam for a first order (the warehouse sits on HOLD- SKUs), and a second
    # order waiting for one unit
    sku, first, shipment, second = await one_holding_one_waiting(http, db)

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
    done: bool = False

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
        self.done = True

    async def rollback(self) -> None:
        await self.transaction.rollback()
        self.done = True


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
        if not instance.done:
            await instance.rollback()
        await instance.conn.close()


async def handle(
    handlers: FulfillmentHandlers | CaptureHandlers, conn: asyncpg.Connection, topic: topics.Topic, payload: ev.Contract
) -> None:
    """As the consumer does: the batch's preparation (its locks), then the handler."""
    envelope = wrap(payload, producer=topic.writer, order_id=getattr(payload, "order_id", None))
    item = Inbound(Origin(topic.name, 0, 0, None, None, ()), envelope, payload)
    await handlers.prepare(conn, [item])
    await handlers.routes()[type(payload)](conn, [item])


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


# ---- capture ----


async def held_requests(db: asyncpg.Pool, document: dict[str, Any]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT state, outcome, order_id FROM capture.early_cancel_requests WHERE channel = $1 AND external_id = $2",
        document["channel"],
        document["external_id"],
    )


async def test_a_channel_cancel_request_read_before_its_order_is_held_and_applied_when_the_order_arrives(
    http, db
) -> None:
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 2)])
    document = order_document([(sku, 1)])
    key = f"{document['channel']}:{document['external_id']}"
    async with TopicReader(topics.dead_letter_topic("capture")) as dead_letters:
        # given a channel's cancel request that overtook its order (they travel on different topics)
        request = {"channel": document["channel"], "external_id": document["external_id"], "reason": "ordered twice"}
        await client.publish(topics.CANCEL_REQUESTS.name, [(key, request)])
        # when capture has read it, it is held
        [held] = await eventually(lambda: held_requests(db, document), bool)
        assert (held["state"], held["order_id"]) == ("held", None)

        # and when the order arrives
        order_id = (await http.post("/v1/orders", json=document)).json()["order_id"]

        # then the request is applied to it at once: the order is cancelled (stock released, nothing shipped)
        view = await wait_status(http, order_id, {"cancelled"})
        steps = [(s["status"], s["detail"]) for s in view["timeline"]]
        assert ("cancellation_requested", f"ordered twice; whole order (via {document['channel']})") in steps
        assert [(c["source"], c["state"]) for c in view["cancellations"]] == [(document["channel"], "accepted")]
        [applied] = await held_requests(db, document)
        assert (applied["state"], applied["outcome"], str(applied["order_id"])) == ("applied", "accepted", order_id)
        await eventually(lambda: stock(db, "ams", sku), lambda levels: levels == (2, 0))
        # and nothing was dead-lettered for a manual replay
        assert [r for r in await dead_letters.read() if r.key == key.encode()] == []


async def test_a_cancel_request_and_its_order_read_at_once_by_two_instances_end_with_the_order_cancelled(
    instances, db, pipeline
) -> None:
    settings = CaptureSettings()
    handlers = CaptureHandlers(settings.intake_rules, settings.risk_rules(), settings.early_cancel_window)
    requester, taker = await instances(settings)
    (sku,) = new_skus(1)
    await seed([("ams", sku, 0)])
    document = order_document([(sku, 1)])
    try:
        # given one instance holding a cancel request for an order it has not seen, not committed yet
        request = ev.CancelRequested(channel=document["channel"], external_id=document["external_id"])
        await handle(handlers, requester.conn, topics.CANCEL_REQUESTS, request)
        # when another instance takes the order in at that moment
        order = ev.SubmittedOrder.model_validate(document)
        intake = asyncio.create_task(handle(handlers, taker.conn, topics.ORDERS_SUBMITTED, order))

        # then the intake waits for the request to be held, and applies it in its own transaction
        await blocked_until(db, taker.conn, intake)
        await requester.commit()
        await intake
        published = await taker.published()
        assert [kind for kind, _ in published] == ["OrderValidated", "OrderCancellationRequested"], published
        assert published[1][1]["lines"] is None
        state = await taker.conn.fetchval(
            "SELECT state FROM early_cancel_requests WHERE channel = $1 AND external_id = $2",
            document["channel"],
            document["external_id"],
        )
        assert state == "applied"
    finally:  # the order goes with the taker's transaction, the request the requester committed goes too
        await taker.rollback()
        await db.execute(
            "DELETE FROM capture.early_cancel_requests WHERE channel = $1 AND external_id = $2",
            document["channel"],
            document["external_id"],
        )


async def test_a_held_cancel_request_no_order_claims_in_time_is_answered_as_expired(instances, caplog) -> None:
    settings = CaptureSettings(early_cancel_window_seconds=600)
    handlers = CaptureHandlers(settings.intake_rules, settings.risk_rules(), settings.early_cancel_window)
    instance, _ = await instances(settings)
    document = order_document([("SKU-1", 1)])
    request = ev.CancelRequested(channel=document["channel"], external_id=document["external_id"])
    expired_before = REGISTRY.get_sample_value(
        "oms_early_cancel_requests_total", {"channel": document["channel"], "outcome": "expired"}
    )
    # given a cancel request held for an order that has not arrived
    await handle(handlers, instance.conn, topics.CANCEL_REQUESTS, request)
    held_since = await instance.conn.fetchval(
        "SELECT held_since FROM early_cancel_requests WHERE external_id = $1", document["external_id"]
    )

    # when the window has not passed yet, it stays held
    assert await handlers.expire_held_cancel_requests(instance.conn, held_since + timedelta(seconds=599)) == 0
    # when it has, the request is answered: expired, with the reason, counted and logged without personal data
    with caplog.at_level(logging.WARNING, logger="services.capture.handlers"):
        assert await handlers.expire_held_cancel_requests(instance.conn, held_since + timedelta(seconds=601)) == 1
    row = await instance.conn.fetchrow(
        "SELECT state, outcome FROM early_cancel_requests WHERE external_id = $1", document["external_id"]
    )
    assert (row["state"], row["outcome"]) == ("expired", "no such order arrived within 600 s")
    expired_after = REGISTRY.get_sample_value(
        "oms_early_cancel_requests_total", {"channel": document["channel"], "outcome": "expired"}
    )
    assert expired_after == (expired_before or 0) + 1
    [logged] = [r.getMessage() for r in caplog.records if "expired" in r.getMessage()]
    assert document["external_id"] in logged and document["customer"]["email"] not in logged
    # and a second sweep finds nothing more to answer
    assert await handlers.expire_held_cancel_requests(instance.conn, held_since + timedelta(seconds=900)) == 0
