"""Each service's outbox relay publishes on its own: a relay that hangs holding its lock stalls its own
service's events only, never another service's."""

import uuid

import asyncpg

from shared.backbone.db import create_pool
from shared.backbone.kafka import encode
from shared.backbone.outbox import DELETE_PUBLISHED, INDEXES_ONLY, RELEASE_SNAPSHOT, TAKE, enqueue, lock_relay
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.envelope import Envelope, wrap
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
            envelope = validated_by_capture(order_id, sku)
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
        (topic, str(order_id), validated_by_capture(order_id, "SKU-1"))
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


async def test_an_event_committed_after_later_ones_were_published_is_published_too(pipeline) -> None:
    # An event's id is taken before its transaction commits, so a lower id can commit after higher ones were
    # published: a relay that went on from the last id it published would never send it.
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    late, early = uuid.uuid4(), uuid.uuid4()
    pool = await create_pool(CommonSettings(service="capture"))
    try:
        async with (
            TopicReader(topics.ORDERS_VALIDATED.name) as validated,
            pool.acquire() as open_,
            pool.acquire() as conn,
        ):
            # given an event written first, in capture's outbox, by a transaction still open
            late_event = validated_by_capture(late, sku)  # after the reader opened: it reads what happens from then
            still_open = open_.transaction()
            await still_open.start()
            try:
                await enqueue(open_, [(topics.ORDERS_VALIDATED, str(late), late_event)])
                late_id = await open_.fetchval("SELECT id FROM outbox WHERE key = $1", str(late))

                # when an event written after it commits, and the relay publishes it
                async with conn.transaction():
                    await enqueue(conn, [(topics.ORDERS_VALIDATED, str(early), validated_by_capture(early, sku))])
                    early_id = await conn.fetchval("SELECT id FROM outbox WHERE key = $1", str(early))
                await eventually(lambda: validated.bodies_for(str(early)), bool)
                assert late_id < early_id
            finally:
                # and the first one's transaction commits only then
                await still_open.commit()

            # then the relay publishes it too
            (published,) = await eventually(lambda: validated.bodies_for(str(late)), bool)
        assert published["event_id"] == str(late_event.event_id)
    finally:
        await pool.close()


def validated_by_capture(order_id: uuid.UUID, sku: str) -> Envelope:
    return wrap(validated_order(order_id, sku), producer="capture", order_id=order_id)


async def outbox_of_its_own(conn: asyncpg.Connection) -> None:
    """An outbox like capture's that only this transaction sees, and its name in the transaction's search path."""
    await conn.execute("SET LOCAL search_path = capture")
    await conn.execute("CREATE TEMP TABLE outbox (LIKE capture.outbox INCLUDING ALL) ON COMMIT DROP")


async def test_the_relay_reads_and_deletes_through_indexes_however_empty_the_outbox_was_when_planned(db) -> None:
    async def planned(conn: asyncpg.Connection) -> list[str]:
        """How the relay's read and delete are run from then on (the plan a prepared statement keeps)."""
        await conn.execute(f"PREPARE take (text, integer) AS {TAKE}; PREPARE remove (bigint[]) AS {DELETE_PUBLISHED}")
        try:
            return [
                await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {statement}")
                for statement in ("take('capture', 500)", "remove('{1}')")
            ]
        finally:
            await conn.execute("DEALLOCATE take; DEALLOCATE remove")

    async with db.acquire() as conn, conn.transaction():
        # given an empty outbox (as just after a vacuum), its statements planned once for every later round
        await outbox_of_its_own(conn)
        await conn.execute("ANALYZE outbox")  # known empty, as after a vacuum (never looked at, it is taken as larger)
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        # a plan made as it comes reads the whole table, every row published since the vacuum with it
        assert ["Seq Scan" in plan for plan in await planned(conn)] == [True, True]

        # when they are planned as the relay's transaction plans them
        await conn.execute(INDEXES_ONLY)

        # then both go through the outbox's primary key
        for plan in await planned(conn):
            assert "Seq Scan" not in plan and "outbox_pkey" in plan


async def test_a_relay_publishing_its_batch_keeps_its_lock_but_no_snapshot(db) -> None:
    async def snapshot_and_relay_locks(pid: int) -> tuple[bool, int]:
        """Whether the session holds back vacuum (its oldest snapshot), and the relay locks it holds."""
        return (
            await db.fetchval("SELECT backend_xmin IS NOT NULL FROM pg_stat_activity WHERE pid = $1", pid),
            await db.fetchval(
                "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND granted", pid
            ),
        )

    async with db.acquire() as conn, conn.transaction():
        # given an outbox with an event (of this transaction's own, so no service's relay takes it)
        await outbox_of_its_own(conn)
        await conn.execute("INSERT INTO outbox (topic, key, body) VALUES ('oms.orders.validated', 'k', '\\x00')")
        pid = await conn.fetchval("SELECT pg_backend_pid()")

        # when a relay (of a service of its own) reads its batch as the relay does, a statement with parameters
        taken = await conn.fetch(TAKE, f"relay-{uuid.uuid4().hex[:8]}", 500)
        assert taken[0]["mine"] and taken[0]["id"] is not None
        # the read's snapshot stays with the session after the read, holding back vacuum
        assert await snapshot_and_relay_locks(pid) == (True, 1)

        # then once it gives it up, as the relay does before it waits for the broker
        await conn.execute(RELEASE_SNAPSHOT)

        # it holds none, but still its relay lock (a transaction's lock: the transaction it deletes the rows in)
        assert await snapshot_and_relay_locks(pid) == (False, 1)
