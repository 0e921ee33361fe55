"""Steps the allocation scenarios share: publish what fulfillment or a warehouse would, read allocation's
decisions from its tables, and check its books balance."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from shared.backbone.kafka import encode
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document
from tests.local import client
from tests.scenario import seed
from tests.waiting import eventually


async def publish_from_fulfillment(payload: ev.Contract, order_id: uuid.UUID) -> None:
    """An event on oms.fulfillment.events exactly as fulfillment writes it (an envelope keyed by order id)."""
    envelope = wrap(payload, producer="fulfillment", order_id=order_id)
    await client.publish(topics.FULFILLMENT_EVENTS.name, [(str(order_id), encode(envelope))])


async def publish_count(warehouse: str, sku: str, counted: int) -> None:
    document = {
        "warehouse_id": warehouse,
        "sku": sku,
        "kind": "count",
        "quantity": counted,
        "reference": f"count-{uuid.uuid4()}",
    }
    await client.publish(topics.INVENTORY_ADJUSTMENTS.name, [(f"{warehouse}:{sku}", document)])


async def allocation_order(
    db: asyncpg.Pool, order_id: uuid.UUID | str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    """Allocation's record of the order once it has one of these statuses (JSON columns decoded)."""
    row = await eventually(
        lambda: db.fetchrow("SELECT * FROM allocation.orders WHERE order_id = $1", uuid.UUID(str(order_id))),
        lambda r: r is not None and r["status"] in statuses,
        timeout=timeout,
    )
    return {k: json.loads(v) if k in JSON_COLUMNS else v for k, v in row.items()}


JSON_COLUMNS = {"lines", "backordered", "cancelled", "ship_to"}


async def shipments(db: asyncpg.Pool, order_id: uuid.UUID | str) -> list[tuple[str, str, int, int, str]]:
    """(warehouse, sku, quantity, short, status) per reservation row of the order, in a stable order."""
    rows = await db.fetch(
        "SELECT warehouse_id, sku, quantity, short, status FROM allocation.reservations WHERE order_id = $1"
        " ORDER BY warehouse_id, sku, status",
        uuid.UUID(str(order_id)),
    )
    return [(r["warehouse_id"], r["sku"], r["quantity"], r["short"], r["status"]) for r in rows]


async def open_shipment(db: asyncpg.Pool, order_id: uuid.UUID | str, warehouse: str) -> uuid.UUID:
    return await eventually(  # type: ignore[no-any-return]
        lambda: db.fetchval(
            "SELECT shipment_id FROM allocation.reservations WHERE order_id = $1 AND warehouse_id = $2"
            " AND status = 'open'",
            uuid.UUID(str(order_id)),
            warehouse,
        ),
        lambda found: found is not None,
    )


async def stock(db: asyncpg.Pool, warehouse: str, sku: str) -> tuple[int, int]:
    row = await db.fetchrow(
        "SELECT on_hand, reserved FROM allocation.stock WHERE warehouse_id = $1 AND sku = $2", warehouse, sku
    )
    return (row["on_hand"], row["reserved"]) if row else (0, 0)


# Per (warehouse, sku): what the ledger says on hand must be, what open reservations hold, and the row itself.
BOOKS = """
SELECT s.warehouse_id, s.sku, s.on_hand, s.reserved,
       coalesce(a.received, 0) AS received,
       coalesce(r.shipped, 0) AS shipped,
       coalesce(r.short, 0) AS short,
       coalesce(r.open, 0) AS open
  FROM allocation.stock s
  LEFT JOIN (SELECT warehouse_id, sku, sum(on_hand_change) AS received
               FROM allocation.adjustments GROUP BY warehouse_id, sku) a USING (warehouse_id, sku)
  LEFT JOIN (SELECT warehouse_id, sku,
                    sum(quantity - short) FILTER (WHERE status = 'shipped') AS shipped,
                    sum(short) AS short,
                    sum(quantity - short) FILTER (WHERE status = 'open') AS open
               FROM allocation.reservations GROUP BY warehouse_id, sku) r USING (warehouse_id, sku)
 WHERE s.sku = ANY($1::text[])
 ORDER BY s.warehouse_id, s.sku
"""


async def assert_books_balance(db: asyncpg.Pool, skus: list[str]) -> list[asyncpg.Record]:
    """On hand is explained by the receipts and counts minus what shipped and what was short; reserved is
    exactly what open reservations hold; nothing is negative or oversold. One statement, one snapshot."""
    rows = await db.fetch(BOOKS, skus)
    for row in rows:
        where = f"{row['warehouse_id']}/{row['sku']}"
        assert row["on_hand"] == row["received"] - row["shipped"] - row["short"], (where, dict(row))
        assert row["reserved"] == row["open"], (where, dict(row))
        assert 0 <= row["reserved"] <= row["on_hand"], (where, dict(row))
    return rows


async def one_holding_one_waiting(http: httpx.AsyncClient, db: asyncpg.Pool) -> tuple[str, str, uuid.UUID, str]:
    """Two units held in Amsterdam for a first order (the simulated warehouse sits on HOLD- SKUs), and a
    second order waiting for one unit: (sku, first order, its shipment, second order)."""
    sku = f"HOLD-{uuid.uuid4().hex[:12]}"
    await seed([("ams", sku, 2)])
    first = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
    shipment = await open_shipment(db, first, "ams")
    second = (await http.post("/v1/orders", json=order_document([(sku, 1)]))).json()["order_id"]
    await allocation_order(db, second, {"backordered"})
    return sku, first, shipment, second
