"""Capture's SQL: orders, their timeline and the catalogue copy."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.db import Conn
from shared.events import SubmittedOrder


async def insert_order(
    conn: Conn, order: SubmittedOrder, total: Decimal, status: str, reasons: list[str], at: datetime
) -> UUID | None:
    """The new order's id, or None when (channel, external_id) is known already."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO orders (order_id, channel, external_id, status, reasons, received_at, placed_at, currency,"
        " total, document) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (channel, external_id) DO NOTHING RETURNING order_id",
        uuid.uuid4(),
        order.channel,
        order.external_id,
        status,
        reasons,
        at,
        order.placed_at,
        order.currency,
        total,
        order.model_dump(mode="json"),
    )


async def find_by_external_id(conn: Conn, channel: str, external_id: str) -> tuple[UUID, str]:
    row = await conn.fetchrow(
        "SELECT order_id, status FROM orders WHERE channel = $1 AND external_id = $2", channel, external_id
    )
    assert row is not None, "called after the insert met this order"
    return row["order_id"], row["status"]


async def catalogue(conn: Conn, skus: Iterable[str]) -> dict[str, bool]:
    rows = await conn.fetch("SELECT sku, active FROM products WHERE sku = ANY($1::text[])", list(set(skus)))
    return {r["sku"]: r["active"] for r in rows}


async def status_of(conn: Conn, order_id: UUID) -> str | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT status FROM orders WHERE order_id = $1 FOR UPDATE", order_id
    )


async def add_steps(conn: Conn, order_id: UUID, steps: list[tuple[str, datetime, str | None]]) -> None:
    await conn.executemany(
        "INSERT INTO order_timeline (order_id, status, occurred_at, detail) VALUES ($1, $2, $3, $4)",
        [(order_id, *step) for step in steps],
    )


async def record_step(conn: Conn, order_id: UUID, status: str, reported: str, at: datetime, detail: str | None) -> None:
    """Add the reported step to the order's timeline and set its status, in one round trip."""
    await conn.execute(
        "WITH step AS (INSERT INTO order_timeline (order_id, status, occurred_at, detail)"
        " VALUES ($1, $3, $4, $5))"
        " UPDATE orders SET status = $2, updated_at = now() WHERE order_id = $1",
        order_id,
        status,
        reported,
        at,
        detail,
    )


async def order_view(conn: Conn, order_id: UUID) -> dict[str, Any] | None:
    order = await conn.fetchrow(
        "SELECT order_id, channel, external_id, status, reasons, received_at, placed_at, currency, total"
        " FROM orders WHERE order_id = $1",
        order_id,
    )
    if order is None:
        return None
    steps = await conn.fetch(
        "SELECT status, occurred_at, detail FROM order_timeline WHERE order_id = $1 ORDER BY occurred_at, id",
        order_id,
    )
    return {**dict(order), "total": str(order["total"]), "timeline": [dict(s) for s in steps]}


async def received_at(conn: Conn, order_id: UUID) -> datetime | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT received_at FROM orders WHERE order_id = $1", order_id
    )
