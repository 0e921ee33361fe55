"""Each service's outbox relay publishes on its own: a relay that hangs holding its lock stalls its own
service's events only, never another service's."""

import uuid

from shared.backbone.db import create_pool
from shared.backbone.kafka import encode
from shared.backbone.outbox import enqueue, lock_relay
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document, validated_order
from tests.local import client
from tests.scenario import TopicReader, new_skus, seed, wait_status
from tests.waiting import eventually


async def test_a_frozen_capture_relay_does_not_stop_allocation_publishing(http, db, pipeline) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    async with db.acquire() as frozen, frozen.transaction():
        # given capture's relay frozen: its lock held, as by a relay that hangs mid-publish
        await lock_relay(frozen, "capture", wait=True)

        # when an order comes in, capture takes it, but its events stay in its outbox
        taken = await http.post("/v1/orders", json=order_document([(sku, 1)]))
        captured = uuid.UUID(taken.json()["order_id"])
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM capture.outbox WHERE convert_from(body, 'UTF8')::jsonb ->> 'order_id' = $1",
                str(captured),
            ),
            lambda pending: pending >= 1,
        )

        # and an order validated elsewhere reaches allocation
        order_id = uuid.uuid4()
        async with TopicReader(topics.ALLOCATION_EVENTS.name) as allocation_events:
            envelope = wrap(validated_order(order_id, sku), producer="capture", order_id=order_id)
            await client.publish(topics.ORDERS_VALIDATED.name, [(str(order_id), encode(envelope))])

            # then allocation's relay still publishes its answer
            (allocated,) = await eventually(lambda: allocation_events.bodies_for(str(order_id)), bool, timeout=30)
        assert allocated["type"] == "OrderAllocated"
        # while capture's events are still waiting
        assert await db.fetchval("SELECT status FROM capture.orders WHERE order_id = $1", captured) == "validated"
        assert await db.fetchval("SELECT count(*) FROM allocation.orders WHERE order_id = $1", captured) == 0

    # and once capture's relay runs again, its order flows on
    await wait_status(http, str(captured), {"allocated", "released", "shipped", "delivered"})


async def test_a_service_session_cannot_run_wait_or_idle_in_a_transaction_without_end(stack) -> None:
    # given a pool as every service opens it
    pool = await create_pool(CommonSettings(service="capture"))
    try:
        async with pool.acquire() as conn:
            limits = {
                name: await conn.fetchval(f"SHOW {name}")
                for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
            }
    finally:
        await pool.close()
    # then the server ends a statement, a lock wait and an idle transaction (a hung relay's) on its own
    assert limits == {"statement_timeout": "30s", "lock_timeout": "10s", "idle_in_transaction_session_timeout": "1min"}


async def test_events_written_together_keep_the_order_they_were_written_in(stack) -> None:
    # given three events one handler writes together, of two topics and three orders
    order_ids = [uuid.uuid4() for _ in range(3)]
    items = [
        (topic, str(order_id), wrap(validated_order(order_id, "SKU-1"), producer="capture", order_id=order_id))
        for topic, order_id in zip(
            (topics.ORDERS_VALIDATED, topics.ORDERS_REJECTED, topics.ORDERS_VALIDATED), order_ids, strict=True
        )
    ]
    pool = await create_pool(CommonSettings(service="capture"))
    try:
        async with pool.acquire() as conn:
            written = conn.transaction()
            await written.start()
            try:
                # when they are enqueued in the transaction that makes their change
                await enqueue(conn, items)
                rows = await conn.fetch(
                    "SELECT topic, key, body FROM outbox WHERE key = ANY($1::text[]) ORDER BY id",
                    [str(o) for o in order_ids],
                )
            finally:
                await written.rollback()  # nothing reaches the relay
    finally:
        await pool.close()
    # then the outbox holds each as written, in the order written (the relay publishes in id order)
    assert [(r["topic"], r["key"], bytes(r["body"])) for r in rows] == [
        (topic.name, key, encode(envelope)) for topic, key, envelope in items
    ]


async def test_a_connection_given_back_mid_transaction_keeps_neither_the_transaction_nor_the_relay_lock(stack) -> None:
    # given a service pool of one connection (given back without asyncpg's reset statement)
    settings = CommonSettings(service="capture", db_pool_size=1)
    pool = await create_pool(settings)
    try:
        # when a relay round is given up while it holds the relay lock and a SET LOCAL, its transaction never ended
        async with pool.acquire() as conn:
            abandoned = conn.transaction()
            await abandoned.start()
            assert await lock_relay(conn, "capture")
            await conn.execute("SET LOCAL statement_timeout = '1s'")
        # then the same connection comes back clean: no transaction, the lock free, the setting as configured
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            held = await again.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            timeout = await again.fetchval("SHOW statement_timeout")
    finally:
        await pool.close()
    assert (held, timeout) == (0, "30s")
