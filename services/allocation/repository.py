"""Allocation's SQL. Stock rows are always locked in (warehouse, sku) order, which keeps concurrent
instances from deadlocking each other on the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.db import Conn
from shared.events import InventoryAdjusted, OrderValidated

from .domain import Availability


async def lock_stock(conn: Conn, skus: Iterable[str]) -> Availability:
    rows = await conn.fetch(
        "SELECT warehouse_id, sku, on_hand - reserved AS available FROM stock WHERE sku = ANY($1::text[])"
        " ORDER BY warehouse_id, sku FOR UPDATE",
        sorted(set(skus)),
    )
    return {(r["warehouse_id"], r["sku"]): r["available"] for r in rows}


async def reserve(conn: Conn, order_id: UUID, warehouse_id: str, lines: Mapping[str, int]) -> UUID:
    """Reserve the lines in one warehouse as a new shipment; returns the shipment id."""
    shipment_id = uuid.uuid4()
    ordered = sorted(lines.items())
    await conn.executemany(
        "UPDATE stock SET reserved = reserved + $3, updated_at = now() WHERE warehouse_id = $1 AND sku = $2",
        [(warehouse_id, sku, quantity) for sku, quantity in ordered],
    )
    await conn.executemany(
        "INSERT INTO reservations (shipment_id, order_id, warehouse_id, sku, quantity) VALUES ($1, $2, $3, $4, $5)",
        [(shipment_id, order_id, warehouse_id, sku, quantity) for sku, quantity in ordered],
    )
    return shipment_id


async def ship_reservations(conn: Conn, shipment_id: UUID) -> int:
    """Units that left the warehouse: out of on hand and out of reserved. Returns how many units."""
    shipped = await conn.fetch(
        "UPDATE reservations SET status = 'shipped' WHERE shipment_id = $1 AND status = 'open'"
        " RETURNING warehouse_id, sku, quantity",
        shipment_id,
    )
    await conn.executemany(
        "UPDATE stock SET on_hand = on_hand - $3, reserved = reserved - $3, updated_at = now()"
        " WHERE warehouse_id = $1 AND sku = $2",
        sorted((r["warehouse_id"], r["sku"], r["quantity"]) for r in shipped),
    )
    return sum(r["quantity"] for r in shipped)


async def order_known(conn: Conn, order_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM orders WHERE order_id = $1", order_id))


async def save_order(conn: Conn, order: OrderValidated, status: str, reason: str | None, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO orders (order_id, status, lines, skus, ship_to, service_level, waiting_since, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        order.order_id,
        status,
        {line.sku: line.quantity for line in order.lines},
        [line.sku for line in order.lines],
        order.ship_to.model_dump(mode="json"),
        order.service_level,
        at,
        reason,
    )


async def mark_allocated(conn: Conn, order_id: UUID) -> None:
    await conn.execute("UPDATE orders SET status = 'allocated', reason = NULL WHERE order_id = $1", order_id)


async def waiting_orders(conn: Conn, skus: Iterable[str]) -> list[asyncpg.Record]:
    """Backordered orders that need any of these SKUs, first come first served."""
    return await conn.fetch(
        "SELECT order_id, lines, ship_to, service_level FROM orders"
        " WHERE status = 'backordered' AND skus && $1::text[] ORDER BY waiting_since, order_id FOR UPDATE",
        sorted(set(skus)),
    )


async def record_adjustment(conn: Conn, adjustment: InventoryAdjusted) -> bool:
    """False when this (warehouse, reference) was applied before."""
    return bool(
        await conn.fetchval(
            "INSERT INTO adjustments (warehouse_id, reference, sku, kind, quantity) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING true",
            adjustment.warehouse_id,
            adjustment.reference,
            adjustment.sku,
            adjustment.kind,
            adjustment.quantity,
        )
    )


async def receive(conn: Conn, warehouse_id: str, sku: str, quantity: int) -> None:
    await conn.execute(
        "INSERT INTO stock (warehouse_id, sku, on_hand) VALUES ($1, $2, $3)"
        " ON CONFLICT (warehouse_id, sku) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand,"
        " updated_at = now()",
        warehouse_id,
        sku,
        quantity,
    )


async def lock_stock_row(conn: Conn, warehouse_id: str, sku: str) -> int:
    """Reserved units of one row, locked (created empty when new)."""
    await conn.execute(
        "INSERT INTO stock (warehouse_id, sku) VALUES ($1, $2) ON CONFLICT DO NOTHING", warehouse_id, sku
    )
    reserved = await conn.fetchval(
        "SELECT reserved FROM stock WHERE warehouse_id = $1 AND sku = $2 FOR UPDATE", warehouse_id, sku
    )
    return int(reserved)


async def set_on_hand(conn: Conn, warehouse_id: str, sku: str, on_hand: int) -> None:
    await conn.execute(
        "UPDATE stock SET on_hand = $3, updated_at = now() WHERE warehouse_id = $1 AND sku = $2",
        warehouse_id,
        sku,
        on_hand,
    )


async def record_shortfall(conn: Conn, adjustment: InventoryAdjusted, shortfall: int) -> None:
    await conn.execute(
        "UPDATE adjustments SET shortfall = $3 WHERE warehouse_id = $1 AND reference = $2",
        adjustment.warehouse_id,
        adjustment.reference,
        shortfall,
    )


def as_mapping(value: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()}


async def stock_rows(
    conn: Conn, sku: str | None, warehouse_id: str | None, max_available: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT warehouse_id, sku, on_hand, reserved, on_hand - reserved AS available, updated_at FROM stock"
        " WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR warehouse_id = $2)"
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
        " FROM stock GROUP BY warehouse_id",
        low_threshold,
    )
