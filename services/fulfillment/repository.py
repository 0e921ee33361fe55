"""Fulfillment's SQL: pick tasks and shipments."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import Conn
from shared.events import PickTaskReleased


async def insert_pick_task(conn: Conn, task: PickTaskReleased) -> bool:
    """False when this shipment already has its pick task."""
    return bool(
        await conn.fetchval(
            "INSERT INTO pick_tasks (pick_task_id, order_id, warehouse_id, lines, ship_to, service_level, status,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, 'released', $7) ON CONFLICT DO NOTHING RETURNING true",
            task.pick_task_id,
            task.order_id,
            task.warehouse_id,
            [line.model_dump() for line in task.lines],
            task.ship_to.model_dump(mode="json"),
            task.service_level,
            task.created_at,
        )
    )


async def lock_pick_task(conn: Conn, pick_task_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT pick_task_id, order_id, warehouse_id, service_level, status FROM pick_tasks"
        " WHERE pick_task_id = $1 FOR UPDATE",
        pick_task_id,
    )


async def set_status(conn: Conn, pick_task_id: UUID, status: str) -> None:
    await conn.execute(
        "UPDATE pick_tasks SET status = $2, updated_at = now() WHERE pick_task_id = $1", pick_task_id, status
    )


async def next_tracking_sequence(conn: Conn) -> int:
    return await conn.fetchval("SELECT nextval('tracking_numbers')")  # type: ignore[no-any-return]


async def insert_shipment(
    conn: Conn,
    tracking_number: str,
    pick_task_id: UUID,
    order_id: UUID,
    carrier: str,
    weight_grams: int | None,
    shipped_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO shipments (tracking_number, pick_task_id, order_id, carrier, weight_grams, shipped_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        tracking_number,
        pick_task_id,
        order_id,
        carrier,
        weight_grams,
        shipped_at,
    )


async def lock_shipment(conn: Conn, tracking_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT order_id, delivered_at FROM shipments WHERE tracking_number = $1 FOR UPDATE", tracking_number
    )


async def record_carrier_status(conn: Conn, tracking_number: str, status: str, delivered_at: datetime | None) -> None:
    await conn.execute(
        "UPDATE shipments SET last_carrier_status = $2, delivered_at = coalesce(delivered_at, $3)"
        " WHERE tracking_number = $1",
        tracking_number,
        status,
        delivered_at,
    )


async def shipments_delivered(conn: Conn, order_id: UUID) -> list[bool]:
    """For each pick task of the order: whether its shipment has been delivered."""
    rows = await conn.fetch(
        "SELECT s.delivered_at IS NOT NULL AS delivered FROM pick_tasks p"
        " LEFT JOIN shipments s ON s.pick_task_id = p.pick_task_id WHERE p.order_id = $1",
        order_id,
    )
    return [bool(r["delivered"]) for r in rows]


async def order_shipments(conn: Conn, order_id: UUID) -> list[dict[str, object]]:
    """Pick tasks of an order with their shipment (carrier, tracking, dates) once there is one."""
    rows = await conn.fetch(
        "SELECT p.pick_task_id, p.warehouse_id, p.status, p.service_level, p.lines, p.created_at,"
        " s.carrier, s.tracking_number, s.shipped_at, s.delivered_at, s.last_carrier_status"
        " FROM pick_tasks p LEFT JOIN shipments s ON s.pick_task_id = p.pick_task_id"
        " WHERE p.order_id = $1 ORDER BY p.created_at, p.pick_task_id",
        order_id,
    )
    return [dict(r) for r in rows]
