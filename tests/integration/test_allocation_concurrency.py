"""Scarce stock, four allocation workers, 500 orders, receipts and cancellations arriving while they are
routed and shipped: at the end the database's books balance exactly, checked by queries.

The four workers are four processes of services.allocation in one consumer group (the pipeline's own
and three more). Part of the SKUs are `HOLD-` SKUs the simulated warehouses never pick, so their
shipments stay open and can be withdrawn by cancellations; the others ship while the test runs."""

import asyncio
import random
import re
import time
import urllib.request
import uuid

from deploy.local import processes
from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.integration.allocation_steps import allocation_order, assert_books_balance, publish_from_fulfillment
from tests.local import LOCAL, client
from tests.scenario import seed
from tests.waiting import eventually

ORDERS = 500
WAREHOUSES = ("ams", "fra", "lyo")
COUNTRIES = ("NL", "DE", "FR", "BE", "ES", "AT")
ALLOCATION_TOPICS = [topics.ORDERS_VALIDATED.name, topics.INVENTORY_ADJUSTMENTS.name, topics.FULFILLMENT_EVENTS.name]

# Orders whose every open shipment is one the warehouses sit on (it has a HOLD- line): cancellable.
HELD_ORDERS = """
WITH held AS (SELECT DISTINCT shipment_id FROM allocation.reservations
               WHERE order_id = ANY($1::uuid[]) AND sku LIKE 'HOLD-%')
SELECT r.order_id, array_agg(DISTINCT r.shipment_id) AS shipments
  FROM allocation.reservations r LEFT JOIN held h USING (shipment_id)
 WHERE r.order_id = ANY($1::uuid[]) AND r.status = 'open'
 GROUP BY r.order_id
HAVING bool_and(h.shipment_id IS NOT NULL)
 LIMIT 30
"""

# Open reservations the simulated warehouses will ship (their shipment has no HOLD- line).
SHIPPABLE_OPEN = """
SELECT count(*) FROM allocation.reservations r
 WHERE r.sku = ANY($1::text[]) AND r.status = 'open' AND r.quantity > r.short
   AND NOT EXISTS (SELECT 1 FROM allocation.reservations h WHERE h.shipment_id = r.shipment_id AND h.sku LIKE 'HOLD-%')
"""

# Per order: ordered = cancelled + waiting + open + shipped, for every SKU of every order.
UNACCOUNTED_UNITS = """
SELECT o.order_id, l.sku, l.quantity::int AS ordered,
       coalesce((o.cancelled ->> l.sku)::int, 0) AS cancelled,
       coalesce((o.backordered ->> l.sku)::int, 0) AS waiting,
       coalesce(sum(r.quantity - r.short) FILTER (WHERE r.status IN ('open', 'shipped')), 0) AS held
  FROM allocation.orders o
  CROSS JOIN LATERAL jsonb_each_text(o.lines) AS l(sku, quantity)
  LEFT JOIN allocation.reservations r ON r.order_id = o.order_id AND r.sku = l.sku
 WHERE o.order_id = ANY($1::uuid[])
 GROUP BY o.order_id, l.sku, l.quantity, o.cancelled, o.backordered
HAVING l.quantity::int <> coalesce((o.cancelled ->> l.sku)::int, 0) + coalesce((o.backordered ->> l.sku)::int, 0)
       + coalesce(sum(r.quantity - r.short) FILTER (WHERE r.status IN ('open', 'shipped')), 0)
"""

# Stock left unpromised while an order whose channel may use every warehouse waits for that SKU.
STRANDED_STOCK = """
SELECT s.warehouse_id, s.sku, s.on_hand - s.reserved AS free, count(o.order_id) AS waiting
  FROM allocation.stock s
  JOIN allocation.orders o ON o.status = 'backordered' AND o.channel = 'webshop' AND s.sku = ANY(o.waiting_skus)
 WHERE s.sku = ANY($1::text[]) AND s.on_hand > s.reserved
 GROUP BY s.warehouse_id, s.sku, s.on_hand, s.reserved
"""


def deadlocks_logged(workers: list[processes.Process]) -> int:
    """Deadlocks the allocation processes met (each retried by the consumer) according to their logs."""
    logs = [processes.service(LOCAL, "allocation").log_file, *(w.log_file for w in workers)]
    return sum(log.read_text(errors="replace").count("DeadlockDetectedError") for log in logs if log.exists())


def metric(port: int, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = re.compile(rf"^{name}\{{([^}}]*)\}} ([0-9.e+-]+)$", re.MULTILINE)
    return sum(float(value) for found, value in pattern.findall(text) if all(part in found for part in labels.split()))


async def test_500_orders_for_scarce_stock_across_4_allocation_workers_balance_the_books_exactly(db, pipeline) -> None:
    rng = random.Random(20260105)
    run = uuid.uuid4().hex[:8]
    shipping = [f"C-{run}-{i}" for i in range(6)]
    held = [f"HOLD-{run}-{i}" for i in range(2)]
    skus = shipping + held
    receipts: dict[tuple[str, str], int] = {}
    # SKUs of the two orders placed where the test controls the outcome: one only ams holds, one only fra
    # holds (an order for both must be split), and one nobody holds yet (its order must wait).
    only_ams, only_fra, unstocked = f"SPLIT-{run}-ams", f"SPLIT-{run}-fra", f"WAIT-{run}"

    async def receive(batch: list[tuple[str, str, int]], reference: str) -> None:
        for warehouse, sku, quantity in batch:
            receipts[(warehouse, sku)] = receipts.get((warehouse, sku), 0) + quantity
        await client.publish_receipts(batch, reference=reference)

    workers = [
        processes.Process(
            LOCAL,
            f"allocation-w{n}",
            "services.allocation",
            LOCAL.ports.http["allocation"] + 20 + n,
            env={"OMS_INSTANCE": f"w{n}"},
        )
        for n in (2, 3, 4)
    ]
    deadlocks_before = deadlocks_logged(workers)
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.wait_ready()
        started = time.monotonic()

        # given scarce stock: about a third of what 500 orders ask for, spread over the three warehouses
        initial = [(w, sku, rng.randint(4, 16)) for w in WAREHOUSES for sku in skus]
        await client.publish_products([unstocked])
        await seed([*initial, ("ams", only_ams, 5), ("fra", only_fra, 5)])
        receipts.update({(w, sku): quantity for w, sku, quantity in initial})

        # when 500 orders arrive at once, from three channels (the pos channel ships one parcel per decision)
        documents = [
            order_document(
                [(sku, rng.randint(1, 3)) for sku in rng.sample(skus, rng.randint(1, 3))],
                country=rng.choice(COUNTRIES),
                channel=rng.choice(["webshop", "webshop", "webshop", "marketplace", "pos"]),
            )
            for _ in range(ORDERS)
        ]
        must_split = order_document([(only_ams, 1), (only_fra, 1)], country="NL")
        must_wait = order_document([(unstocked, 2)], country="NL")
        controlled = [must_split, must_wait]
        await client.publish(
            topics.ORDERS_SUBMITTED.name,
            [(f"{d['channel']}:{d['external_id']}", d) for d in [*documents, *controlled]],
        )
        # and receipts keep arriving while they are routed
        for wave in range(4):
            await asyncio.sleep(0.5)
            batch = [(rng.choice(WAREHOUSES), sku, rng.randint(2, 10)) for sku in skus]
            await receive(batch, f"wave-{run}-{wave}")

        external_ids = [d["external_id"] for d in documents]
        order_ids = await eventually(
            lambda: db.fetch("SELECT order_id FROM capture.orders WHERE external_id = ANY($1::text[])", external_ids),
            lambda rows: len(rows) == ORDERS,
            timeout=60,
        )
        order_ids = [r["order_id"] for r in order_ids]
        await eventually(
            lambda: db.fetchval("SELECT count(*) FROM allocation.orders WHERE order_id = ANY($1::uuid[])", order_ids),
            lambda n: n == ORDERS,
            timeout=60,
        )
        controlled_ids = await eventually(
            lambda: db.fetch(
                "SELECT c.external_id, a.order_id, a.status FROM capture.orders c"
                " JOIN allocation.orders a USING (order_id) WHERE c.external_id = ANY($1::text[])",
                [d["external_id"] for d in controlled],
            ),
            lambda rows: len(rows) == len(controlled),
            timeout=60,
        )
        controlled_id = {r["external_id"]: r["order_id"] for r in controlled_ids}
        decided = time.monotonic() - started

        # and customers cancel: orders whose held shipments are withdrawn, and orders still waiting
        holding = await db.fetch(HELD_ORDERS, order_ids)
        waiting = await db.fetch(
            "SELECT order_id FROM allocation.orders WHERE order_id = ANY($1::uuid[]) AND status = 'backordered'"
            " AND NOT EXISTS (SELECT 1 FROM allocation.reservations r WHERE r.order_id = orders.order_id"
            " AND r.status = 'open') LIMIT 20",
            order_ids,
        )
        cancellations = [(r["order_id"], list(r["shipments"])) for r in holding]
        cancellations += [(r["order_id"], []) for r in waiting]
        await asyncio.gather(
            *(
                publish_from_fulfillment(
                    ev.CancellationAccepted(order_id=order_id, withdrawn_shipments=withdrawn, reason="load test"),
                    order_id,
                )
                for order_id, withdrawn in cancellations
            ),
            receive([(rng.choice(WAREHOUSES), sku, rng.randint(2, 10)) for sku in skus], f"last-{run}"),
            # one of the two units the waiting order needs arrives: it is released in part and waits on
            client.publish_receipts([("lyo", unstocked, 1)], reference=f"partial-{run}"),
        )

        # then, once everything is handled and every shippable reservation has shipped
        async def settled() -> bool:
            if await client.lag("oms-allocation", ALLOCATION_TOPICS):
                return False
            still_open = await db.fetchval(SHIPPABLE_OPEN, shipping)
            return bool(still_open == 0 and not await client.lag("oms-allocation", ALLOCATION_TOPICS))

        await eventually(settled, bool, timeout=90, every=0.5)
        settled_after = time.monotonic() - started
        retries = sum(metric(w.http_port or 0, "oms_transient_retries_total", "") for w in workers) + metric(
            LOCAL.ports.http["allocation"], "oms_transient_retries_total", ""
        )
        deadlocks = deadlocks_logged(workers) - deadlocks_before
        handled = [
            metric(port, "oms_messages_consumed_total", f'topic="{topics.ORDERS_VALIDATED.name}" processed')
            for port in [LOCAL.ports.http["allocation"], *(w.http_port or 0 for w in workers)]
        ]
    finally:
        for worker in workers:
            worker.stop()

    # the stock equals the receipts minus the shipments, reserved equals the open reservations, nothing negative
    books = await assert_books_balance(db, skus)
    assert len(books) == len(WAREHOUSES) * len(skus)
    for row in books:
        key = (row["warehouse_id"], row["sku"])
        assert row["short"] == 0
        assert row["on_hand"] == receipts[key] - row["shipped"], (key, dict(row), receipts[key])
    # every unit of every order is cancelled, waiting, reserved or shipped
    assert await db.fetch(UNACCOUNTED_UNITS, order_ids) == []
    # no stock is left unpromised while an order that may use it waits
    assert await db.fetch(STRANDED_STOCK, skus) == []
    # and the cancellations were honoured
    reasons = await db.fetch("SELECT status, reason FROM allocation.orders WHERE order_id = ANY($1::uuid[])", order_ids)
    statuses = [r["status"] for r in reasons]
    assert statuses.count("cancelled") == len(cancellations)
    # and among the load, the order no single warehouse can ship was split, the one nothing was in stock for
    # waited and was released in part by the receipt that came
    split = await allocation_order(db, controlled_id[must_split["external_id"]], {"allocated"})
    assert split["reason"].startswith("split into 2 shipments from ams, fra"), split["reason"]
    waited = await allocation_order(db, controlled_id[must_wait["external_id"]], {"backordered"})
    assert waited["reason"].startswith("released from backorder: partial: lyo"), waited["reason"]
    assert waited["backordered"] == {unstocked: 1}
    # and all four workers routed orders, taking their locks in one global order: no deadlock between them
    assert all(n > 0 for n in handled), handled
    assert deadlocks == 0
    print(
        f"\n{ORDERS} orders, 4 workers: all routed in {decided:.1f} s, settled in {settled_after:.1f} s;"
        f" orders validated per worker {handled}; transient retries {retries:.0f}, deadlocks {deadlocks};"
        f" statuses { {s: statuses.count(s) for s in set(statuses)} }"
    )
