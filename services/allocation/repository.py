"""Allocation's SQL: lock and load the part of the inventory a batch may touch, once, and save what changed, once.

Locking discipline (several instances share the work, each handling a batch of records in one
transaction):
- stock rows are the locks: a transaction reads or changes an order only while it holds the stock rows
  of every warehouse for that order's SKUs (rows are created empty for every configured warehouse, so a
  SKU never received has rows to lock too);
- at the start of each batch (`load_batch`) every stock row the batch may need is locked in ONE
  statement, in (warehouse, sku) order, so two instances never wait on each other in a cycle. What a
  batch may need depends on which orders wait (read before the locks): if that grew while waiting for
  the locks (the orders loaded under the locks name SKUs not locked), they are given back (rollback to a
  savepoint) and taken again, the larger set in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn, columns
from shared.contracts.events import InventoryAdjusted

from .inventory import Inventory
from .ledger import Key, Reservation, StockLevel
from .orders import CancelRequest, Order
from .priority import Component, Priority
from .replenishment import OnOrder, Suggestion


async def create_stock(conn: Conn, warehouse_ids: Sequence[str], skus: Iterable[str]) -> None:
    """Create the missing (empty) rows of these SKUs in the configured warehouses."""
    await conn.execute(
        "INSERT INTO stock (warehouse_id, sku)"
        " SELECT w, s FROM unnest($1::text[]) AS w CROSS JOIN unnest($2::text[]) AS s ORDER BY w, s"
        " ON CONFLICT DO NOTHING",
        sorted(warehouse_ids),
        sorted(set(skus)),
    )


async def lock_stock(conn: Conn, warehouse_ids: Sequence[str], skus: Iterable[str]) -> dict[Key, StockLevel] | None:
    """Lock every row of these SKUs; None when a configured warehouse has no row for one of them yet (what was
    locked is then the caller's to give back, before `create_stock`). A SKU's rows are created once; the insert
    that made sure of them ran in every batch, changed nothing, and cost about as much as the locks."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT warehouse_id, sku, on_hand, reserved FROM stock WHERE sku = ANY($1::text[])"
        " ORDER BY warehouse_id, sku FOR UPDATE",
        wanted,
    )
    levels = {(r["warehouse_id"], r["sku"]): StockLevel(r["on_hand"], r["reserved"]) for r in rows}
    if any((w, sku) not in levels for w in warehouse_ids for sku in wanted):
        return None
    return levels


async def load_batch(
    conn: Conn, inventory: Inventory, skus: Iterable[str], order_ids: Iterable[UUID], shipment_ids: Iterable[UUID]
) -> None:
    """Lock every stock row the batch may touch and load it, with the orders waiting for its SKUs, the orders
    it names and their open reservations, and the open reservations of the shipments it names."""
    order_ids, shipment_ids = sorted(set(order_ids)), sorted(set(shipment_ids))
    wanted = await skus_for_batch(conn, skus, order_ids, shipment_ids)
    while True:
        savepoint = conn.transaction()
        await savepoint.start()
        levels = await lock_stock(conn, inventory.network.warehouse_ids, wanted)
        if levels is None:  # rows to create: the locks are given back first, so that no insert waits holding them
            await savepoint.rollback()
            await create_stock(conn, inventory.network.warehouse_ids, wanted)
            continue
        orders = [
            _order(r)
            for r in await conn.fetch(
                f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ANY($1::uuid[])"
                " OR (status = 'backordered' AND waiting_skus && $2::text[])",
                order_ids,
                sorted(wanted),
            )
        ]
        # Open ones are kept here rather than asked for: with `status = 'open'` in the query the planner walked
        # the open reservations' index and filtered every open reservation by order (17 ms a batch with 30,000
        # open), where the orders' and shipments' indexes find their few rows whatever is open.
        reservations = [
            _reservation(r)
            for r in await conn.fetch(
                "SELECT shipment_id, order_id, warehouse_id, sku, quantity, short, status FROM reservations"
                " WHERE order_id = ANY($1::uuid[]) OR shipment_id = ANY($2::uuid[])",
                order_ids,
                shipment_ids,
            )
            if r["status"] == "open"
        ]
        grown = {sku for o in orders for sku in o.skus} | {r.sku for r in reservations}
        if grown <= wanted:
            await savepoint.commit()
            break
        await savepoint.rollback()  # gives back the row locks taken since the savepoint
        wanted = await skus_for_batch(conn, wanted | grown, order_ids, shipment_ids)
    inventory.ledger.add_stock(levels)
    inventory.add_orders(orders)
    inventory.ledger.add_reservations(reservations)


async def skus_for_batch(
    conn: Conn, skus: Iterable[str], order_ids: Sequence[UUID], shipment_ids: Sequence[UUID]
) -> set[str]:
    """Every SKU a batch may touch: its own, those of the orders and shipments it names, and those of the orders
    waiting for any of these, and so on (a release routes a waiting order's other lines too).

    The waiting orders are found a round at a time, all of a round's new SKUs in one array that the waiting orders'
    index answers at once; a recursive query joined each SKU to every waiting order in turn, and took 36 ms a batch
    with a few hundred orders waiting."""
    rows = await conn.fetch(
        "SELECT unnest($1::text[]) AS sku UNION SELECT unnest(skus) FROM orders WHERE order_id = ANY($2::uuid[])"
        " UNION SELECT sku FROM reservations WHERE shipment_id = ANY($3::uuid[])",
        sorted(set(skus)),
        list(order_ids),
        list(shipment_ids),
    )
    found = {r["sku"] for r in rows}
    new = found
    while new:
        rows = await conn.fetch(
            "SELECT DISTINCT unnest(skus) AS sku FROM orders"
            " WHERE status = 'backordered' AND waiting_skus && $1::text[]",
            sorted(new),
        )
        new = {r["sku"] for r in rows} - found
        found |= new
    return found


async def save(conn: Conn, inventory: Inventory) -> None:
    """Write what the operations touched, one statement per table (a statement per row cost a round of the
    executor each and was most of allocation's database time): stock first (reservations refer to its rows),
    then orders, then reservations. The deferred check at commit compares them."""
    stock = sorted((k, inventory.ledger.stock[k]) for k in inventory.ledger.touched_stock)
    orders = [inventory.orders[i] for i in sorted(inventory.touched_orders)]
    reservations = [inventory.ledger.reservations[k] for k in sorted(inventory.ledger.touched_reservations)]
    if stock:
        await conn.execute(
            "INSERT INTO stock (warehouse_id, sku, on_hand, reserved)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[])"
            " ON CONFLICT (warehouse_id, sku) DO UPDATE SET on_hand = excluded.on_hand, reserved = excluded.reserved,"
            " updated_at = now()",
            *columns([(w, sku, level.on_hand, level.reserved) for (w, sku), level in stock], 4),
        )
    if orders:
        await conn.execute(
            "INSERT INTO orders (order_id, channel, backorder_policy, status, lines, backordered, cancelled,"
            " skus, waiting_skus, ship_to, service_level, arrived_at, reason, priority, priority_components,"
            " dropship, version)"
            " SELECT o.order_id, o.channel, o.policy, o.status,"
            "  o.lines::jsonb, o.backordered::jsonb, o.cancelled::jsonb,"
            # text[] columns travel as the keys of the jsonb beside them (an array of arrays does not unnest by row);
            # sorted by code point, as Python sorts them
            '  ARRAY(SELECT k FROM jsonb_object_keys(o.lines::jsonb) AS k ORDER BY k COLLATE "C"),'
            '  ARRAY(SELECT k FROM jsonb_object_keys(o.backordered::jsonb) AS k ORDER BY k COLLATE "C"),'
            "  o.ship_to::jsonb, o.service_level, o.arrived_at, o.reason, o.priority, o.components::jsonb,"
            "  o.dropship::jsonb, o.version"
            # jsonb travels as text: a list in a jsonb[] parameter would be read as one more dimension
            " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
            "  $8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::int[], $13::text[], $14::text[],"
            "  $15::int[]) AS o(order_id, channel, policy, status, lines, backordered, cancelled, ship_to,"
            "  service_level, arrived_at, reason, priority, components, dropship, version)"
            " ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, backordered = excluded.backordered,"
            " cancelled = excluded.cancelled, waiting_skus = excluded.waiting_skus, reason = excluded.reason,"
            " dropship = excluded.dropship,"
            # an order change moves these (and the version with them); otherwise they are as taken in
            " lines = excluded.lines, skus = excluded.skus, ship_to = excluded.ship_to,"
            " service_level = excluded.service_level, version = excluded.version",
            *columns(
                [
                    (
                        o.order_id,
                        o.channel,
                        o.policy,
                        o.status,
                        json.dumps(o.lines),
                        json.dumps(o.backordered),
                        json.dumps(o.cancelled),
                        json.dumps(dict(o.ship_to)),
                        o.service_level,
                        o.arrived_at,
                        o.reason,
                        o.priority.base,
                        json.dumps(
                            [{"name": c.name, "points": c.points, "detail": c.detail} for c in o.priority.components]
                        ),
                        json.dumps(o.dropship),
                        o.version,
                    )
                    for o in orders
                ],
                15,
            ),
        )
    # New reservations are inserted, the others changed in place: an upsert locks each row it changes before
    # changing it, and each lock is a WAL record of its own (a fifth of allocation's at steady rates).
    new = [r for r in reservations if r.key in inventory.ledger.new_reservations]
    changed = [r for r in reservations if r.key not in inventory.ledger.new_reservations]
    if new:
        await conn.execute(
            "INSERT INTO reservations (shipment_id, sku, order_id, warehouse_id, quantity, short, status)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::int[], $6::int[], $7::text[])",
            *columns(
                [(r.shipment_id, r.sku, r.order_id, r.warehouse_id, r.quantity, r.short, r.status) for r in new], 7
            ),
        )
    if changed:
        await conn.execute(
            "UPDATE reservations r SET short = c.short, status = c.status"
            " FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS c(shipment_id, sku, short, status)"
            " WHERE r.shipment_id = c.shipment_id AND r.sku = c.sku",
            *columns([(r.shipment_id, r.sku, r.short, r.status) for r in changed], 4),
        )


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


async def take_early_cancellations(conn: Conn, order_ids: set[UUID]) -> dict[UUID, CancelRequest]:
    """The cancellations kept for these orders before allocation saw them, taken out (`keep_early_cancellations`
    puts back those the batch did not use)."""
    if not order_ids:
        return {}
    rows = await conn.fetch(
        "DELETE FROM early_cancellations WHERE order_id = ANY($1::uuid[]) RETURNING order_id, lines, reason",
        sorted(set(order_ids)),
    )
    return {
        r["order_id"]: CancelRequest(None if r["lines"] is None else _quantities(r["lines"]), r["reason"]) for r in rows
    }


async def keep_early_cancellations(conn: Conn, requests: Mapping[UUID, CancelRequest]) -> None:
    """Remember cancellations for orders not seen yet, until they arrive."""
    if requests:
        await conn.executemany(
            "INSERT INTO early_cancellations (order_id, lines, reason) VALUES ($1, $2, $3)"
            " ON CONFLICT (order_id) DO UPDATE SET lines = excluded.lines, reason = excluded.reason",
            [(order_id, r.lines, r.reason) for order_id, r in sorted(requests.items())],
        )


async def record_demand(conn: Conn, demanded: Mapping[Key, int]) -> None:
    """Add the units a batch's routing decisions reserved to today's demand (UTC) per warehouse and SKU."""
    if not demanded:
        return
    keys = sorted(demanded)
    await conn.execute(
        "INSERT INTO demand (warehouse_id, sku, day, units)"
        " SELECT w, s, (now() AT TIME ZONE 'UTC')::date, u FROM unnest($1::text[], $2::text[], $3::int[]) AS d(w, s, u)"
        " ON CONFLICT (warehouse_id, sku, day) DO UPDATE SET units = demand.units + excluded.units",
        [w for w, _ in keys],
        [sku for _, sku in keys],
        [demanded[k] for k in keys],
    )


async def open_suggestions(conn: Conn, keys: Iterable[Key]) -> dict[Key, list[OnOrder]]:
    """The suggestions open for these (warehouse, sku) pairs: what is on order there."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT suggestion_id, warehouse_id, sku, quantity, expected_by FROM replenishment_suggestions"
        " WHERE status = 'open' AND (warehouse_id, sku) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [w for w, _ in keys],
        [sku for _, sku in keys],
    )
    found: dict[Key, list[OnOrder]] = {}
    for r in rows:
        found.setdefault((r["warehouse_id"], r["sku"]), []).append(
            OnOrder(r["suggestion_id"], r["quantity"], r["expected_by"])
        )
    return found


async def open_new_suggestions(conn: Conn, suggestions: Sequence[Suggestion]) -> set[UUID]:
    """Record the suggestions; one for a warehouse and SKU with an open one already is left out (the unique index
    decides). Returns the ids recorded."""
    if not suggestions:
        return set()
    columns = [
        [s.suggestion_id for s in suggestions],
        [s.warehouse_id for s in suggestions],
        [s.sku for s in suggestions],
        [s.rule.supplier for s in suggestions],
        [s.quantity for s in suggestions],
        [s.forecast for s in suggestions],
        [s.on_hand for s in suggestions],
        [s.reserved for s in suggestions],
        [s.on_order for s in suggestions],
        [s.rule.minimum for s in suggestions],
        [s.rule.maximum for s in suggestions],
        [s.rule.pack_multiple for s in suggestions],
        [s.rule.lead_time_days for s in suggestions],
        [s.expected_by for s in suggestions],
    ]
    rows = await conn.fetch(
        "INSERT INTO replenishment_suggestions (suggestion_id, warehouse_id, sku, supplier, quantity, forecast,"
        " on_hand, reserved, on_order, minimum, maximum, pack_multiple, lead_time_days, expected_by)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::int[],"
        " $8::int[], $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $14::date[])"
        " ON CONFLICT (warehouse_id, sku) WHERE status = 'open' DO NOTHING RETURNING suggestion_id",
        *columns,
    )
    return {r["suggestion_id"] for r in rows}


async def close_received_suggestions(
    conn: Conn, receipts: Sequence[tuple[UUID, str, str, str]]
) -> list[asyncpg.Record]:
    """Close the open suggestions these receipts name, (suggestion id, warehouse, sku, reference) each; a receipt
    at another warehouse or of another SKU than its suggestion's closes nothing (of two deliveries naming one
    suggestion in a batch, either reference is kept). Returns the suggestions closed."""
    if not receipts:
        return []
    return await conn.fetch(
        "UPDATE replenishment_suggestions s SET status = 'received', received_at = now(), received_by = r.reference"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS r(id, warehouse_id, sku, reference)"
        " WHERE s.suggestion_id = r.id AND s.warehouse_id = r.warehouse_id AND s.sku = r.sku AND s.status = 'open'"
        " RETURNING s.suggestion_id, s.warehouse_id, s.sku, s.received_by",
        [r[0] for r in receipts],
        [r[1] for r in receipts],
        [r[2] for r in receipts],
        [r[3] for r in receipts],
    )


async def find_order(conn: Conn, order_id: UUID) -> Order | None:
    row = await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1", order_id)
    return None if row is None else _order(row)


ORDER_COLUMNS = (
    "order_id, channel, backorder_policy, status, lines, backordered, cancelled, ship_to, service_level,"
    " arrived_at, reason, priority_components, dropship, version"
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
        priority=Priority(tuple(Component(**c) for c in r["priority_components"])),
        dropship={supplier: _quantities(lines) for supplier, lines in r["dropship"].items()},
        version=r["version"],
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


async def suggestion_rows(conn: Conn, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Replenishment suggestions, newest first (all of them when `status` is None)."""
    rows = await conn.fetch(
        "SELECT suggestion_id, warehouse_id, sku, supplier, quantity, forecast, on_hand, reserved, on_order, minimum,"
        " maximum, pack_multiple, lead_time_days, expected_by, status, opened_at, received_at, received_by"
        " FROM replenishment_suggestions WHERE ($1::text IS NULL OR status = $1) ORDER BY opened_at DESC, suggestion_id"
        " LIMIT $2",
        status,
        limit,
    )
    return [dict(r) for r in rows]


async def demand_since(conn: Conn, since: date) -> list[asyncpg.Record]:
    """Units demanded per day since `since`, per (warehouse, sku), each with the first day it was ever demanded."""
    return await conn.fetch(
        "SELECT d.warehouse_id, d.sku, d.day, d.units,"
        " (SELECT min(e.day) FROM demand e WHERE e.warehouse_id = d.warehouse_id AND e.sku = d.sku) AS first_day"
        " FROM demand d WHERE d.day >= $1 ORDER BY d.warehouse_id, d.sku, d.day",
        since,
    )
