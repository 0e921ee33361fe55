"""Fulfillment's SQL: pick tasks, shipments, carrier updates, warehouse reports, cancellations, and the
per-order lock rows that serialise decisions about one order's pick tasks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts.events import CarrierReported, ItemQuantity, PickTaskReleased, WarehouseReported

from .domain import CLOSED_EMPTY, ServiceChoice, TaskState

TASK_COLUMNS = (
    "pick_task_id, order_id, warehouse_id, lines, picked_lines, ship_to, service_level, status, created_at,"
    " promised_delivery"
)


def _lines(lines: Sequence[ItemQuantity]) -> list[dict[str, object]]:
    return [line.model_dump() for line in lines]


def task_state(row: asyncpg.Record) -> TaskState:
    """The domain's view of a task row: what it holds now (the picked lines after a short pick)."""
    held = row["picked_lines"] if row["picked_lines"] is not None else row["lines"]
    return TaskState(
        row["pick_task_id"], row["warehouse_id"], row["status"], tuple(ItemQuantity(**line) for line in held)
    )


async def lock_orders(conn: Conn, order_ids: Iterable[UUID]) -> None:
    """Take the orders' lock rows until the transaction ends, creating missing ones, in one global order (so
    two instances locking several orders never wait on each other in a cycle). Held twice is held once."""
    ids = sorted(set(order_ids))
    if not ids:
        return
    # An insert meeting another's uncommitted insert of the same row waits for it; then the row is locked.
    await conn.execute(
        "INSERT INTO order_locks (order_id) SELECT unnest($1::uuid[]) ORDER BY 1 ON CONFLICT DO NOTHING", ids
    )
    await conn.execute(
        "SELECT order_id FROM order_locks WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE", ids
    )


async def orders_of_tasks(conn: Conn, pick_task_ids: Iterable[UUID]) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT order_id FROM pick_tasks WHERE pick_task_id = ANY($1::uuid[])", list(set(pick_task_ids))
    )
    return {r["order_id"] for r in rows}


async def orders_of_shipments(conn: Conn, tracking_numbers: Iterable[str]) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT order_id FROM shipments WHERE tracking_number = ANY($1::text[])", list(set(tracking_numbers))
    )
    return {r["order_id"] for r in rows}


@dataclass(frozen=True)
class NewTask:
    """A pick task to release: born withdrawn when its order's cancellation reason is given."""

    task: PickTaskReleased
    promised_delivery: date
    cancel_reason: str | None = None


async def insert_pick_tasks(conn: Conn, new: Sequence[NewTask]) -> set[UUID]:
    """Insert the pick tasks (of distinct shipments) in one statement; returns the ids of those inserted, not
    of those whose shipment already has its pick task."""
    if not new:
        return set()
    tasks = [n.task for n in new]
    rows = await conn.fetch(
        "INSERT INTO pick_tasks (pick_task_id, order_id, warehouse_id, lines, ship_to, service_level, status,"
        " created_at, promised_delivery, cancel_reason, priority)"
        " SELECT pick_task_id, order_id, warehouse_id, lines::jsonb, ship_to::jsonb, service_level, status,"
        " created_at, promised_delivery, cancel_reason, priority"
        " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        " $8::timestamptz[], $9::date[], $10::text[], $11::int[]) WITH ORDINALITY"
        " AS t(pick_task_id, order_id, warehouse_id, lines, ship_to, service_level, status, created_at,"
        " promised_delivery, cancel_reason, priority, n) ORDER BY n"
        " ON CONFLICT DO NOTHING RETURNING pick_task_id",
        [t.pick_task_id for t in tasks],
        [t.order_id for t in tasks],
        [t.warehouse_id for t in tasks],
        [json.dumps(_lines(t.lines)) for t in tasks],
        [t.ship_to.model_dump_json() for t in tasks],
        [t.service_level for t in tasks],
        ["released" if n.cancel_reason is None else "cancelled" for n in new],
        [t.created_at for t in tasks],
        [n.promised_delivery for n in new],
        [n.cancel_reason for n in new],
        [t.priority for t in tasks],
    )
    return {r["pick_task_id"] for r in rows}


async def pick_task(conn: Conn, pick_task_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {TASK_COLUMNS} FROM pick_tasks WHERE pick_task_id = $1", pick_task_id)


async def lock_order_tasks(conn: Conn, order_id: UUID) -> list[asyncpg.Record]:
    """Every pick task of the order, locked in one fixed order so concurrent handlers cannot deadlock."""
    return await conn.fetch(
        f"SELECT {TASK_COLUMNS} FROM pick_tasks WHERE order_id = $1 ORDER BY pick_task_id FOR UPDATE", order_id
    )


async def set_status(
    conn: Conn, pick_task_id: UUID, status: str, picked_lines: Sequence[ItemQuantity] | None = None
) -> None:
    await conn.execute(
        "UPDATE pick_tasks SET status = $2, picked_lines = coalesce($3, picked_lines), updated_at = now()"
        " WHERE pick_task_id = $1",
        pick_task_id,
        status,
        None if picked_lines is None else _lines(picked_lines),
    )


async def withdraw(conn: Conn, pick_task_ids: Sequence[UUID], reason: str) -> None:
    await conn.execute(
        "UPDATE pick_tasks SET status = 'cancelled', cancel_reason = $2, updated_at = now()"
        " WHERE pick_task_id = ANY($1::uuid[])",
        list(pick_task_ids),
        reason,
    )


async def record_warehouse_report(conn: Conn, event_id: UUID, report: WarehouseReported, outcome: str) -> None:
    await conn.execute(
        "INSERT INTO warehouse_reports (event_id, pick_task_id, kind, occurred_at, outcome)"
        " VALUES ($1, $2, $3, $4, $5)",
        event_id,
        report.pick_task_id,
        report.kind,
        report.occurred_at,
        outcome,
    )


async def next_tracking_serial(conn: Conn) -> int:
    return await conn.fetchval("SELECT nextval('tracking_numbers')")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class NewShipment:
    tracking_number: str
    pick_task_id: UUID
    order_id: UUID
    weight_grams: int
    lines: Sequence[ItemQuantity]
    choice: ServiceChoice
    leaves_on: date
    shipped_at: datetime


async def insert_shipment(conn: Conn, s: NewShipment) -> None:
    await conn.execute(
        "INSERT INTO shipments (tracking_number, pick_task_id, order_id, carrier, service, zone, price, weight_grams,"
        " lines, leaves_on, expected_delivery, promised_delivery, tracking_url, shipped_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        s.tracking_number,
        s.pick_task_id,
        s.order_id,
        s.choice.carrier.code,
        s.choice.service,
        s.choice.zone,
        s.choice.price,
        s.weight_grams,
        _lines(s.lines),
        s.leaves_on,
        s.choice.delivery,
        s.choice.promised_delivery,
        s.choice.carrier.tracking_link(s.tracking_number),
        s.shipped_at,
    )


async def lock_shipment(conn: Conn, tracking_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT order_id, pick_task_id, carrier, delivered_at FROM shipments WHERE tracking_number = $1 FOR UPDATE",
        tracking_number,
    )


async def record_carrier_event(conn: Conn, report: CarrierReported) -> bool:
    """False when the carrier already sent this very update."""
    return bool(
        await conn.fetchval(
            "INSERT INTO carrier_events (tracking_number, kind, occurred_at, detail) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            report.tracking_number,
            report.kind,
            report.occurred_at,
            report.detail,
        )
    )


async def update_carrier_status(conn: Conn, report: CarrierReported) -> None:
    """The latest update (by the carrier's time) is the status; delivery and the last exception are kept."""
    await conn.execute(
        "UPDATE shipments SET"
        " last_carrier_status = CASE WHEN last_carrier_status_at IS NULL OR last_carrier_status_at <= $3"
        "   THEN $2 ELSE last_carrier_status END,"
        " last_carrier_status_at = greatest(last_carrier_status_at, $3),"
        " delivered_at = CASE WHEN $2 = 'delivered' THEN coalesce(delivered_at, $3) ELSE delivered_at END,"
        " exception_at = CASE WHEN $2 = 'exception' THEN $3 ELSE exception_at END,"
        " exception_detail = CASE WHEN $2 = 'exception' THEN $4 ELSE exception_detail END"
        " WHERE tracking_number = $1",
        report.tracking_number,
        report.kind,
        report.occurred_at,
        report.detail,
    )


async def shipments_delivered(conn: Conn, order_id: UUID) -> list[bool]:
    """For each pick task of the order still meant to ship: whether its shipment has been delivered."""
    rows = await conn.fetch(
        "SELECT s.delivered_at IS NOT NULL AS delivered FROM pick_tasks p"
        " LEFT JOIN shipments s ON s.pick_task_id = p.pick_task_id"
        " WHERE p.order_id = $1 AND p.status <> ALL($2::text[])",
        order_id,
        list(CLOSED_EMPTY),
    )
    return [bool(r["delivered"]) for r in rows]


async def record_cancellation(
    conn: Conn,
    event_id: UUID,
    order_id: UUID,
    lines: Sequence[ItemQuantity] | None,
    reason: str,
    withdrawn: Sequence[UUID],
    refusal: str | None,
    decided_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO cancellations (event_id, order_id, lines, outcome, reason, refusal, withdrawn_shipments,"
        " decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        event_id,
        order_id,
        None if lines is None else _lines(lines),
        "accepted" if refusal is None else "refused",
        reason,
        refusal,
        list(withdrawn),
        decided_at,
    )


async def whole_order_cancellations(conn: Conn, order_ids: Iterable[UUID]) -> dict[UUID, str]:
    """The reason of an accepted cancellation of the whole order, for those of these orders that have one."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (order_id) order_id, reason FROM cancellations"
        " WHERE order_id = ANY($1::uuid[]) AND outcome = 'accepted' AND lines IS NULL ORDER BY order_id",
        list(set(order_ids)),
    )
    return {r["order_id"]: r["reason"] for r in rows}


async def order_shipments(conn: Conn, order_id: UUID) -> list[dict[str, object]]:
    """Pick tasks of an order with their shipment (carrier, tracking, dates) once there is one."""
    rows = await conn.fetch(
        "SELECT p.pick_task_id, p.warehouse_id, p.status, p.service_level, p.priority, p.lines, p.created_at,"
        " s.carrier, s.tracking_number, s.shipped_at, s.delivered_at, s.last_carrier_status"
        " FROM pick_tasks p LEFT JOIN shipments s ON s.pick_task_id = p.pick_task_id"
        " WHERE p.order_id = $1 ORDER BY p.created_at, p.pick_task_id",
        order_id,
    )
    return [dict(r) for r in rows]
