"""Allocation's SQL: load the part of the inventory a message needs, locked, and save what changed.

Locking discipline (several instances share the work, each handling a batch of messages in one
transaction):
- stock rows are the locks: a transaction reads or changes an order only while it holds the stock rows
  of every warehouse for that order's SKUs (rows are created empty for every configured warehouse, so a
  SKU never received has rows to lock too);
- at the start of each batch (`lock_for_batch`) every stock row the batch may need is locked in ONE
  statement, in (warehouse, sku) order, so two instances never wait on each other in a cycle. What a
  batch may need depends on which orders wait (read before the locks): if that grew while waiting for
  the locks, they are given back (rollback to a savepoint) and taken again, the larger set in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts.events import InventoryAdjusted

from .inventory import Inventory
from .ledger import Key, Reservation, StockLevel
from .orders import CancelRequest, Order


async def lock_stock(conn: Conn, warehouse_ids: Sequence[str], skus: Iterable[str]) -> dict[Key, StockLevel]:
    """Create any missing rows for these SKUs in the configured warehouses, then lock every row of them."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    await conn.execute(
        "INSERT INTO stock (warehouse_id, sku)"
        " SELECT w, s FROM unnest($1::text[]) AS w CROSS JOIN unnest($2::text[]) AS s ORDER BY w, s"
        " ON CONFLICT DO NOTHING",
        sorted(warehouse_ids),
        wanted,
    )
    rows = await conn.fetch(
        "SELECT warehouse_id, sku, on_hand, reserved FROM stock WHERE sku = ANY($1::text[])"
        " ORDER BY warehouse_id, sku FOR UPDATE",
        wanted,
    )
    return {(r["warehouse_id"], r["sku"]): StockLevel(r["on_hand"], r["reserved"]) for r in rows}


async def lock_for_batch(
    conn: Conn, warehouse_ids: Sequence[str], skus: Iterable[str], order_ids: set[UUID], shipment_ids: set[UUID]
) -> None:
    wanted = await skus_for_batch(conn, skus, order_ids, shipment_ids)
    while True:
        savepoint = conn.transaction()
        await savepoint.start()
        await lock_stock(conn, warehouse_ids, wanted)
        needed = await skus_for_batch(conn, wanted, order_ids, shipment_ids)
        if needed <= wanted:
            await savepoint.commit()
            return
        await savepoint.rollback()  # gives back the row locks taken since the savepoint
        wanted = needed


async def skus_for_batch(
    conn: Conn, skus: Iterable[str], order_ids: Iterable[UUID], shipment_ids: Iterable[UUID]
) -> set[str]:
    """Every SKU a batch may touch: its own, those of the orders and shipments it names, and those of the
    orders waiting for any of these, and so on (a release routes a waiting order's other lines too)."""
    found = set(skus)
    found |= {
        r["sku"]
        for r in await conn.fetch(
            "SELECT unnest(skus) AS sku FROM orders WHERE order_id = ANY($1::uuid[])"
            " UNION SELECT sku FROM reservations WHERE shipment_id = ANY($2::uuid[])",
            list(set(order_ids)),
            list(set(shipment_ids)),
        )
    }
    while more := await waiting_skus(conn, found) - found:
        found |= more
    return found


async def waiting_skus(conn: Conn, skus: Iterable[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT unnest(skus) AS sku FROM orders WHERE status = 'backordered' AND waiting_skus && $1::text[]",
        sorted(set(skus)),
    )
    return {r["sku"] for r in rows}


async def load_queue(conn: Conn, inventory: Inventory, skus: Iterable[str], freeing: Iterable[str] = ()) -> None:
    """Add the waiting orders an operation may serve: every one waiting for a SKU it is `freeing` stock of,
    those waiting for `skus` the inventory can promise now, and, in turn, those waiting for the other
    SKUs in stock that the added ones wait for (the aggregate serves exactly this queue)."""
    await load_waiting(conn, inventory, freeing)
    looked: set[str] = set()
    pending = {*skus, *freeing}
    while pending:
        looked |= pending
        await load_waiting(conn, inventory, inventory.ledger.skus_in_stock(pending))
        waiting = {sku for o in inventory.orders.values() if o.status == "backordered" for sku in o.backordered}
        pending = waiting - looked


async def load_waiting(conn: Conn, inventory: Inventory, skus: Iterable[str]) -> None:
    """Add the orders waiting for these SKUs, with the stock of all their SKUs (locked)."""
    wanted = sorted(set(skus))
    if not wanted:
        return
    rows = await conn.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'backordered' AND waiting_skus && $1::text[]",
        wanted,
    )
    orders = [_order(r) for r in rows]
    missing = {sku for o in orders for sku in o.skus} - {sku for _, sku in inventory.ledger.stock}
    inventory.ledger.add_stock(await lock_stock(conn, inventory.network.warehouse_ids, missing))
    inventory.add_orders(orders)


async def load_orders(conn: Conn, inventory: Inventory, order_ids: Iterable[UUID]) -> None:
    """Add these orders with their open reservations, and the stock of their SKUs (locked)."""
    ids = list(set(order_ids))
    rows = await conn.fetch(f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ANY($1::uuid[])", ids)
    orders = [_order(r) for r in rows]
    reservations = await conn.fetch(
        "SELECT shipment_id, order_id, warehouse_id, sku, quantity, short, status FROM reservations"
        " WHERE order_id = ANY($1::uuid[]) AND status = 'open'",
        ids,
    )
    missing = {sku for o in orders for sku in o.skus} - {sku for _, sku in inventory.ledger.stock}
    inventory.ledger.add_stock(await lock_stock(conn, inventory.network.warehouse_ids, missing))
    inventory.add_orders(orders)
    inventory.ledger.add_reservations(_reservation(r) for r in reservations)


async def load_shipment(conn: Conn, inventory: Inventory, shipment_id: UUID) -> None:
    rows = await conn.fetch(
        "SELECT shipment_id, order_id, warehouse_id, sku, quantity, short, status FROM reservations"
        " WHERE shipment_id = $1 AND status = 'open'",
        shipment_id,
    )
    inventory.ledger.add_stock(await lock_stock(conn, inventory.network.warehouse_ids, {r["sku"] for r in rows}))
    inventory.ledger.add_reservations(_reservation(r) for r in rows)


async def save(conn: Conn, inventory: Inventory) -> None:
    """Write what the operations touched: stock first (reservations refer to its rows), then orders,
    then reservations. The deferred check at commit compares them."""
    stock = sorted((k, inventory.ledger.stock[k]) for k in inventory.ledger.touched_stock)
    await conn.executemany(
        "INSERT INTO stock (warehouse_id, sku, on_hand, reserved) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (warehouse_id, sku) DO UPDATE SET on_hand = excluded.on_hand, reserved = excluded.reserved,"
        " updated_at = now()",
        [(w, sku, level.on_hand, level.reserved) for (w, sku), level in stock],
    )
    orders = [inventory.orders[i] for i in sorted(inventory.touched_orders)]
    await conn.executemany(
        "INSERT INTO orders (order_id, channel, backorder_policy, status, lines, backordered, cancelled, skus,"
        " waiting_skus, ship_to, service_level, arrived_at, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, backordered = excluded.backordered,"
        " cancelled = excluded.cancelled, waiting_skus = excluded.waiting_skus, reason = excluded.reason",
        [
            (
                o.order_id,
                o.channel,
                o.policy,
                o.status,
                o.lines,
                o.backordered,
                o.cancelled,
                sorted(o.lines),
                sorted(o.backordered),
                dict(o.ship_to),
                o.service_level,
                o.arrived_at,
                o.reason,
            )
            for o in orders
        ],
    )
    reservations = [inventory.ledger.reservations[k] for k in sorted(inventory.ledger.touched_reservations)]
    await conn.executemany(
        "INSERT INTO reservations (shipment_id, sku, order_id, warehouse_id, quantity, short, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (shipment_id, sku) DO UPDATE SET short = excluded.short, status = excluded.status",
        [(r.shipment_id, r.sku, r.order_id, r.warehouse_id, r.quantity, r.short, r.status) for r in reservations],
    )


async def order_known(conn: Conn, order_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM orders WHERE order_id = $1", order_id))


async def record_adjustment(conn: Conn, adjustment: InventoryAdjusted) -> tuple[str, int] | None:
    """Record the adjustment line; when its (warehouse, reference, sku) was recorded before, nothing is
    written and the earlier line's (kind, quantity) is returned instead."""
    key = (adjustment.warehouse_id, adjustment.reference, adjustment.sku)
    if await conn.fetchval(
        "INSERT INTO adjustments (warehouse_id, reference, sku, kind, quantity) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING RETURNING true",
        *key,
        adjustment.kind,
        adjustment.quantity,
    ):
        return None
    # A statement of its own: its snapshot sees the earlier line even if that committed while this one waited.
    row = await conn.fetchrow(
        "SELECT kind, quantity FROM adjustments WHERE warehouse_id = $1 AND reference = $2 AND sku = $3", *key
    )
    assert row is not None, "the insert met this line"
    return (row["kind"], row["quantity"])


async def record_effect(conn: Conn, adjustment: InventoryAdjusted, on_hand_change: int, shortfall: int) -> None:
    await conn.execute(
        "UPDATE adjustments SET on_hand_change = $4, shortfall = $5"
        " WHERE warehouse_id = $1 AND reference = $2 AND sku = $3",
        adjustment.warehouse_id,
        adjustment.reference,
        adjustment.sku,
        on_hand_change,
        shortfall,
    )


async def take_early_cancellation(conn: Conn, order_id: UUID) -> CancelRequest | None:
    row = await conn.fetchrow("DELETE FROM early_cancellations WHERE order_id = $1 RETURNING lines, reason", order_id)
    if row is None:
        return None
    return CancelRequest(None if row["lines"] is None else _quantities(row["lines"]), row["reason"])


async def add_early_cancellation(conn: Conn, order_id: UUID, request: CancelRequest) -> None:
    """Remember a cancellation for an order not seen yet; several add up (a whole-order one wins)."""
    known = await conn.fetchrow("SELECT lines, reason FROM early_cancellations WHERE order_id = $1", order_id)
    lines = request.lines
    if known is not None:
        earlier = None if known["lines"] is None else _quantities(known["lines"])
        lines = (
            None
            if earlier is None or lines is None
            else {s: earlier.get(s, 0) + lines.get(s, 0) for s in {*earlier, *lines}}
        )
    await conn.execute(
        "INSERT INTO early_cancellations (order_id, lines, reason) VALUES ($1, $2, $3)"
        " ON CONFLICT (order_id) DO UPDATE SET lines = excluded.lines, reason = excluded.reason",
        order_id,
        lines,
        request.reason,
    )


ORDER_COLUMNS = (
    "order_id, channel, backorder_policy, status, lines, backordered, cancelled, ship_to, service_level,"
    " arrived_at, reason"
)


def _order(r: asyncpg.Record) -> Order:
    return Order(
        order_id=r["order_id"],
        arrived_at=r["arrived_at"],
        channel=r["channel"],
        policy=r["backorder_policy"],
        ship_to=r["ship_to"],
        service_level=r["service_level"],
        lines=_quantities(r["lines"]),
        backordered=_quantities(r["backordered"]),
        cancelled=_quantities(r["cancelled"]),
        status=r["status"],
        reason=r["reason"],
    )


def _reservation(r: asyncpg.Record) -> Reservation:
    return Reservation(
        r["shipment_id"], r["order_id"], r["warehouse_id"], r["sku"], r["quantity"], r["short"], r["status"]
    )


def _quantities(value: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()}


# Rows exist empty in every warehouse for every SKU (so they can be locked); a warehouse stocks a SKU
# once it holds or owes units of it, or has had a receipt or count of it.
STOCKED = (
    "(s.on_hand > 0 OR s.reserved > 0 OR EXISTS"
    " (SELECT 1 FROM adjustments a WHERE a.warehouse_id = s.warehouse_id AND a.sku = s.sku))"
)


async def stock_rows(
    conn: Conn, sku: str | None, warehouse_id: str | None, max_available: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT warehouse_id, sku, on_hand, reserved, on_hand - reserved AS available, updated_at FROM stock s"
        f" WHERE {STOCKED} AND ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR warehouse_id = $2)"
        " AND ($3::int IS NULL OR on_hand - reserved <= $3) ORDER BY warehouse_id, sku LIMIT $4",
        sku,
        warehouse_id,
        max_available,
        limit,
    )
    return [dict(r) for r in rows]


async def stock_levels(conn: Conn, low_threshold: int) -> list[asyncpg.Record]:
    """Per warehouse: SKUs at or below the low-stock threshold, SKUs with nothing available, units available."""
    return await conn.fetch(
        "SELECT warehouse_id, count(*) FILTER (WHERE on_hand - reserved <= $1) AS low,"
        " count(*) FILTER (WHERE on_hand - reserved <= 0) AS out, coalesce(sum(on_hand - reserved), 0) AS available"
        f" FROM stock s WHERE {STOCKED} GROUP BY warehouse_id",
        low_threshold,
    )
