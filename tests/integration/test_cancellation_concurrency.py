"""Cancellations fired at random moments at 300 orders, with two instances of every service: no stock leaks and
no cancelled order ships, checked by SQL across the services' schemas once everything has settled.

The second instances run in the services' consumer groups beside the pipeline's own (one consumer group per
service), so an order's events on different topics are often handled by different instances. The orders:
- cancelled right after they were taken in, through the other capture instance (the cancellation overtakes
  the allocation: fulfillment accepts it before the shipment reaches it, the pick task is born withdrawn);
- waiting for stock while receipts release them and cancellations arrive;
- holding pick tasks when cancelled, some in whole, some one line;
- cancelled by their channel on the cancel-request topic before the order was submitted;
- and a stream of orders that ship (the warehouses sit on `HOLD-` SKUs only), some cancelled on the way.
"""

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from deploy.local import processes
from deploy.local.keys import DevelopmentKeys
from shared.contracts import topics
from tests.factories import order_document
from tests.integration.allocation_steps import assert_books_balance
from tests.local import LOCAL, client
from tests.scenario import TopicReader, seed
from tests.waiting import eventually

T = TypeVar("T")
WAREHOUSES = ("ams", "fra", "lyo")
COUNTRIES = ("NL", "DE", "FR", "BE")
SERVICES = ("capture", "allocation", "fulfillment", "notifications")
CONSUMED = {
    "oms-capture": [
        topics.ORDERS_SUBMITTED,
        topics.CANCEL_REQUESTS,
        topics.ALLOCATION_EVENTS,
        topics.PICK_TASKS,
        topics.FULFILLMENT_EVENTS,
    ],
    "oms-allocation": [topics.ORDERS_VALIDATED, topics.INVENTORY_ADJUSTMENTS, topics.FULFILLMENT_EVENTS],
    "oms-fulfillment": [
        topics.ALLOCATION_EVENTS,
        topics.ORDER_CANCELLATIONS,
        topics.WAREHOUSE_EVENTS,
        topics.CARRIER_EVENTS,
    ],
}

# Open reservations of cancelled orders.
LEAKED = """
SELECT r.order_id, r.shipment_id, r.sku FROM allocation.reservations r JOIN allocation.orders o USING (order_id)
 WHERE r.status = 'open' AND o.status = 'cancelled' AND o.order_id = ANY($1::uuid[])
"""
# Pick tasks still meant for the warehouse (or handed to the carrier) of orders cancelled as a whole.
LIVE_TASKS_OF_CANCELLED_ORDERS = """
SELECT p.order_id, p.pick_task_id, p.status FROM fulfillment.pick_tasks p
 WHERE p.order_id = ANY($1::uuid[]) AND p.status <> ALL('{cancelled,nothing_picked}'::text[])
   AND EXISTS (SELECT 1 FROM fulfillment.cancellations c
                WHERE c.order_id = p.order_id AND c.outcome = 'accepted' AND c.lines IS NULL)
"""
# Orders fulfillment accepted a whole cancellation of, and their status in allocation and capture.
WHOLE_CANCELLATIONS = """
SELECT DISTINCT c.order_id, a.status AS allocation, o.status AS capture FROM fulfillment.cancellations c
  LEFT JOIN allocation.orders a USING (order_id) LEFT JOIN capture.orders o USING (order_id)
 WHERE c.order_id = ANY($1::uuid[]) AND c.outcome = 'accepted' AND c.lines IS NULL
"""
# Pick tasks born withdrawn: cancelled, but by no cancellation decision (their shipment came after it).
BORN_WITHDRAWN = """
SELECT count(*) FROM fulfillment.pick_tasks p
 WHERE p.order_id = ANY($1::uuid[]) AND p.status = 'cancelled'
   AND NOT EXISTS (SELECT 1 FROM fulfillment.cancellations c WHERE p.pick_task_id = ANY(c.withdrawn_shipments))
"""


def deadlocks(instances: list[processes.Process]) -> int:
    """Deadlocks the instances met (each retried as contention) according to their logs."""
    logs = [p.log_file for p in instances]
    return sum(log.read_text(errors="replace").count("DeadlockDetectedError") for log in logs if log.exists())


def second_instance(service: str) -> processes.Process:
    return processes.Process(
        LOCAL, f"{service}-w2", f"services.{service}", LOCAL.ports.http[service] + 40, env={"OMS_INSTANCE": "w2"}
    )


async def settled(db: Any) -> bool:
    """Nothing left to publish or to read, for every service: outboxes empty and every group caught up."""
    outboxes = " + ".join(f"(SELECT count(*) FROM {s}.outbox)" for s in SERVICES)
    if await db.fetchval(f"SELECT {outboxes}"):
        return False
    for group, consumed in CONSUMED.items():
        if await client.lag(group, [t.name for t in consumed]):
            return False
    return not await db.fetchval(f"SELECT {outboxes}")


async def read_to_end(reader: TopicReader) -> list[Any]:
    """Everything on the reader's topic from where it opened up to the end as of now."""
    ends = await reader.consumer.end_offsets(list(reader.consumer.assignment()))

    async def caught_up() -> bool:
        await reader.read()
        return all([await reader.consumer.position(tp) >= end for tp, end in ends.items()])

    await eventually(caught_up, bool, timeout=30)
    return reader.seen


async def test_300_orders_cancelled_at_random_moments_with_two_instances_of_each_service_leak_nothing(http, db) -> None:
    rng = random.Random(20270215)
    run = uuid.uuid4().hex[:8]
    held, second_line, scarce = f"HOLD-{run}-a", f"HOLD-{run}-c", f"HOLD-{run}-b"
    shipping = [f"C-{run}-{i}" for i in range(3)]
    skus = [held, second_line, scarce, *shipping]
    extra = [second_instance(service) for service in SERVICES]
    every_instance = [*(processes.service(LOCAL, s) for s in SERVICES), *extra]
    deadlocks_before = deadlocks(every_instance)
    second = f"http://127.0.0.1:{extra[0].http_port}"
    captures = [http, httpx.AsyncClient(base_url=second, timeout=30, auth=DevelopmentKeys(LOCAL.keys_file))]
    gate = asyncio.Semaphore(8)

    async def paced(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    async def submit(document: dict[str, Any], via: int) -> str:
        response = await paced(lambda: captures[via % 2].post("/v1/orders", json=document))
        assert response.status_code == 202, response.text
        return str(response.json()["order_id"])

    async def cancel(order_id: str, via: int, lines: list[dict[str, Any]] | None = None) -> None:
        body = {"reason": "changed my mind"} | ({"lines": lines} if lines else {})
        response = await paced(lambda: captures[via % 2].post(f"/v1/orders/{order_id}/cancel", json=body))
        assert response.status_code in (202, 409), response.text  # 409: it shipped first

    async def later(seconds: float, action: Awaitable[None]) -> None:
        await asyncio.sleep(seconds)  # fires the action at a random moment; nothing waits on it here
        await action

    for process in extra:
        process.start()
    readers = [TopicReader(topics.dead_letter_topic(service)) for service in SERVICES]
    try:
        for process in extra:
            process.wait_ready()
        for reader in readers:
            await reader.__aenter__()
        # given stock for the held orders, none of the scarce SKU, a little of the SKUs that ship
        await seed(
            [(w, held, 300) for w in WAREHOUSES]
            + [(w, second_line, 100) for w in WAREHOUSES]
            + [("ams", scarce, 0)]
            + [(w, sku, rng.randint(10, 20)) for w in WAREHOUSES for sku in shipping]
        )
        # and orders waiting for the scarce SKU, and orders whose pick tasks are at the warehouses
        waiting = await asyncio.gather(
            *(
                submit(order_document([(scarce, rng.randint(1, 2))], country=rng.choice(COUNTRIES)), i)
                for i in range(50)
            )
        )
        picking = await asyncio.gather(
            *(
                submit(order_document([(held, 1), (second_line, 1)], country=rng.choice(COUNTRIES)), i)
                for i in range(50)
            )
        )
        await eventually(
            lambda: db.fetchval(
                "SELECT count(DISTINCT order_id) FROM fulfillment.pick_tasks WHERE order_id = ANY($1::uuid[])",
                [uuid.UUID(o) for o in picking],
            ),
            lambda n: n == len(picking),
            timeout=60,
        )
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM allocation.orders WHERE status = 'backordered' AND order_id = ANY($1::uuid[])",
                [uuid.UUID(o) for o in waiting],
            ),
            lambda n: n == len(waiting),
            timeout=60,
        )
        # and cancel requests a channel published before its orders, read by capture already
        early = [order_document([(held, 1)], country=rng.choice(COUNTRIES)) for _ in range(40)]
        await client.publish(
            topics.CANCEL_REQUESTS.name,
            [
                (f"{d['channel']}:{d['external_id']}", {"channel": d["channel"], "external_id": d["external_id"]})
                for d in early
            ],
        )
        await client.wait_caught_up("oms-capture", [topics.CANCEL_REQUESTS.name])

        # when, all at once: orders are cancelled right after they were taken in, through the other instance
        async def cancelled_at_once(i: int) -> str:
            order_id = await submit(order_document([(held, rng.randint(1, 3))], country=rng.choice(COUNTRIES)), i)
            await cancel(order_id, i + 1)
            return order_id

        # receipts release waiting orders while some of them are cancelled
        async def receipts() -> None:
            for wave in range(6):
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                await client.publish_receipts([(rng.choice(WAREHOUSES), scarce, 8)], reference=f"wave-{run}-{wave}")

        # orders that ship, some cancelled on the way
        async def shipped_or_cancelled(i: int) -> str:
            lines = [(sku, rng.randint(1, 3)) for sku in rng.sample(shipping, rng.randint(1, 2))]
            order_id = await submit(order_document(lines, country=rng.choice(COUNTRIES)), i)
            if i % 5 == 0:
                await later(rng.uniform(0, 3), cancel(order_id, i + 1))
            return order_id

        meanwhile = [
            receipts(),
            *(later(rng.uniform(0, 4), cancel(o, i)) for i, o in enumerate(waiting[:25])),
            *(
                later(rng.uniform(0, 4), cancel(o, i, None if i % 3 else [{"sku": second_line, "quantity": 1}]))
                for i, o in enumerate(picking)
            ),
        ]
        at_once, streamed, early_ids, _ = await asyncio.gather(
            asyncio.gather(*(cancelled_at_once(i) for i in range(60))),
            asyncio.gather(*(shipped_or_cancelled(i) for i in range(100))),
            asyncio.gather(*(submit(d, i) for i, d in enumerate(early))),
            asyncio.gather(*meanwhile),
        )
        order_ids = [uuid.UUID(o) for o in [*waiting, *picking, *at_once, *streamed, *early_ids]]

        # then, once every service has read and published everything
        await eventually(lambda: settled(db), bool, timeout=120, every=0.5)
        dead = [r for reader in readers for r in await read_to_end(reader)]
    finally:
        for reader in readers:
            await reader.__aexit__()
        await captures[1].aclose()
        for process in extra:
            process.stop()

    # per (warehouse, sku): reserved is exactly what the open reservations hold, and none is a cancelled order's
    await assert_books_balance(db, skus)
    assert await db.fetch(LEAKED, order_ids) == []
    # no pick task of an order cancelled as a whole is with the warehouse or the carrier
    assert await db.fetch(LIVE_TASKS_OF_CANCELLED_ORDERS, order_ids) == []
    # every whole cancellation fulfillment accepted ended the order in allocation and in capture
    whole = await db.fetch(WHOLE_CANCELLATIONS, order_ids)
    assert [dict(r) for r in whole if (r["allocation"], r["capture"]) != ("cancelled", "cancelled")] == []
    # the orders cancelled at once or early, and those waiting or picking cancelled as a whole, are all cancelled
    # (the warehouses sit on their tasks: none could ship first)
    cancelled = {r["order_id"] for r in whole}
    assert {uuid.UUID(o) for o in [*at_once, *early_ids]} <= cancelled
    assert {uuid.UUID(o) for i, o in enumerate(picking) if i % 3} | {uuid.UUID(o) for o in waiting[:25]} <= cancelled
    # every cancel request held for an order not yet arrived was applied to it
    requests = await db.fetch(
        "SELECT state, outcome FROM capture.early_cancel_requests WHERE external_id = ANY($1::text[])",
        [d["external_id"] for d in early],
    )
    assert sorted((r["state"], r["outcome"]) for r in requests) == [("applied", "accepted")] * len(early)
    # and nothing of these orders went to a dead-letter topic
    ours = {str(o) for o in order_ids} | {f"{d['channel']}:{d['external_id']}" for d in early}
    assert [r.key for r in dead if r.key and r.key.decode() in ours] == []
    # and no two instances waited on each other in a cycle: every handler locks in one global order
    assert deadlocks(every_instance) == deadlocks_before
    # the races did happen: pick tasks born withdrawn (their shipment reached fulfillment after the cancellation)
    born_withdrawn = await db.fetchval(BORN_WITHDRAWN, order_ids)
    assert born_withdrawn > 0
    statuses = await db.fetch(
        "SELECT status, count(*) AS n FROM capture.orders WHERE order_id = ANY($1::uuid[]) GROUP BY status", order_ids
    )
    print(
        f"\n{len(order_ids)} orders, two instances of each service: {len(cancelled)} cancelled as a whole,"
        f" {born_withdrawn} pick tasks born withdrawn; statuses { {r['status']: r['n'] for r in statuses} }"
    )
