"""Fulfillment's SQL: pick tasks, shipments, carrier updates, warehouse reports, cancellations, and the
per-order lock rows that serialise decisions about one order's pick tasks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn, lock_names
from shared.contracts.events import CarrierReported, ItemQuantity, PickTaskReleased, WarehouseReported

from .domain import CLOSED_EMPTY, Parcel, Picking, ServiceChoice, TaskState

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


def picking(row: asyncpg.Record) -> Picking:
    """A task row as the warehouse's reports move it on."""
    picked = row["picked_lines"]
    return Picking(
        row["pick_task_id"],
        row["order_id"],
        row["status"],
        tuple(ItemQuantity(**line) for line in row["lines"]),
        None if picked is None else tuple(ItemQuantity(**line) for line in picked),
    )


async def lock_orders(conn: Conn, order_ids: Iterable[UUID]) -> None:
    """Take the orders' locks until the transaction ends, in one global order. Advisory locks: the lock rows they
    replace wrote a WAL record each time one was taken (about five per order) and a row per order never removed."""
    await lock_names(conn, "fulfillment-order", (str(order_id) for order_id in order_ids))


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


async def lock_order_tasks(conn: Conn, order_id: UUID) -> list[asyncpg.Record]:
    """Every pick task of the order, locked in one fixed order so concurrent handlers cannot deadlock."""
    return await conn.fetch(
        f"SELECT {TASK_COLUMNS} FROM pick_tasks WHERE order_id = $1 ORDER BY pick_task_id FOR UPDATE", order_id
    )


async def lock_tasks_of_orders(conn: Conn, pick_task_ids: Iterable[UUID]) -> list[asyncpg.Record]:
    """Every pick task of the orders these tasks belong to, locked in (order, task) order: the order
    `lock_order_tasks` takes one order's tasks in, so the two never wait on each other in a cycle."""
    return await conn.fetch(
        f"SELECT {TASK_COLUMNS} FROM pick_tasks WHERE order_id IN"
        " (SELECT order_id FROM pick_tasks WHERE pick_task_id = ANY($1::uuid[]))"
        " ORDER BY order_id, pick_task_id FOR UPDATE",
        list(set(pick_task_ids)),
    )


async def move_tasks(conn: Conn, tasks: Sequence[Picking]) -> None:
    """Save where the warehouse's reports left the tasks (each task once): status, and what a short pick held."""
    if not tasks:
        return
    await conn.execute(
        "UPDATE pick_tasks p SET status = t.status, picked_lines = coalesce(t.picked::jsonb, p.picked_lines),"
        " updated_at = now() FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(pick_task_id, status, picked)"
        " WHERE p.pick_task_id = t.pick_task_id",
        [t.pick_task_id for t in tasks],
        [t.status for t in tasks],
        [None if t.picked is None else json.dumps(_lines(t.picked)) for t in tasks],
    )


async def withdraw(conn: Conn, pick_task_ids: Sequence[UUID], reason: str) -> None:
    await conn.execute(
        "UPDATE pick_tasks SET status = 'cancelled', cancel_reason = $2, updated_at = now()"
        " WHERE pick_task_id = ANY($1::uuid[])",
        list(pick_task_ids),
        reason,
    )


async def record_warehouse_reports(conn: Conn, reports: Sequence[tuple[UUID, WarehouseReported, str]]) -> None:
    """Every (event id, report, outcome), in one statement."""
    if not reports:
        return
    await conn.execute(
        "INSERT INTO warehouse_reports (event_id, pick_task_id, kind, occurred_at, outcome)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[])",
        [event_id for event_id, _, _ in reports],
        [report.pick_task_id for _, report, _ in reports],
        [report.kind for _, report, _ in reports],
        [report.occurred_at for _, report, _ in reports],
        [outcome for _, _, outcome in reports],
    )


async def next_tracking_serials(conn: Conn, n: int) -> list[int]:
    """`n` serials for tracking numbers, in no particular order."""
    if n == 0:
        return []
    rows = await conn.fetch("SELECT nextval('tracking_numbers') AS serial FROM generate_series(1, $1)", n)
    return [r["serial"] for r in rows]


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


async def insert_shipments(conn: Conn, shipments: Sequence[NewShipment]) -> None:
    if not shipments:
        return
    await conn.execute(
        "INSERT INTO shipments (tracking_number, pick_task_id, order_id, carrier, service, zone, price, weight_grams,"
        " lines, leaves_on, expected_delivery, promised_delivery, tracking_url, shipped_at)"
        " SELECT tracking_number, pick_task_id, order_id, carrier, service, zone, price, weight_grams, lines::jsonb,"
        " leaves_on, expected_delivery, promised_delivery, tracking_url, shipped_at"
        " FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::numeric[],"
        " $8::int[], $9::text[], $10::date[], $11::date[], $12::date[], $13::text[], $14::timestamptz[])"
        " AS s(tracking_number, pick_task_id, order_id, carrier, service, zone, price, weight_grams, lines, leaves_on,"
        " expected_delivery, promised_delivery, tracking_url, shipped_at)",
        [s.tracking_number for s in shipments],
        [s.pick_task_id for s in shipments],
        [s.order_id for s in shipments],
        [s.choice.carrier.code for s in shipments],
        [s.choice.service for s in shipments],
        [s.choice.zone for s in shipments],
        [s.choice.price for s in shipments],
        [s.weight_grams for s in shipments],
        [json.dumps(_lines(s.lines)) for s in shipments],
        [s.leaves_on for s in shipments],
        [s.choice.delivery for s in shipments],
        [s.choice.promised_delivery for s in shipments],
        [s.choice.carrier.tracking_link(s.tracking_number) for s in shipments],
        [s.shipped_at for s in shipments],
    )


PARCEL_COLUMNS = (
    "tracking_number, order_id, pick_task_id, carrier, last_carrier_status, last_carrier_status_at, delivered_at,"
    " exception_at, exception_detail"
)


def parcel(row: asyncpg.Record) -> Parcel:
    """A shipment row as the carrier's updates move it on."""
    return Parcel(
        row["order_id"],
        row["last_carrier_status"],
        row["last_carrier_status_at"],
        row["delivered_at"],
        row["exception_at"],
        row["exception_detail"],
    )


async def lock_shipments(conn: Conn, tracking_numbers: Iterable[str]) -> dict[str, asyncpg.Record]:
    """The shipments with these tracking numbers, locked in tracking number order."""
    rows = await conn.fetch(
        f"SELECT {PARCEL_COLUMNS} FROM shipments WHERE tracking_number = ANY($1::text[])"
        " ORDER BY tracking_number FOR UPDATE",
        list(set(tracking_numbers)),
    )
    return {r["tracking_number"]: r for r in rows}


CarrierUpdateKey = tuple[str, str, datetime]


async def record_carrier_events(conn: Conn, reports: Sequence[CarrierReported]) -> set[CarrierUpdateKey]:
    """Record the carrier's updates, the first of each (tracking number, kind, time) only; returns the keys of
    those recorded now, not of those the carrier sent before."""
    if not reports:
        return set()
    rows = await conn.fetch(
        "INSERT INTO carrier_events (tracking_number, kind, occurred_at, detail)"
        " SELECT tracking_number, kind, occurred_at, detail"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY"
        " AS e(tracking_number, kind, occurred_at, detail, n) ORDER BY n"
        " ON CONFLICT DO NOTHING RETURNING tracking_number, kind, occurred_at",
        [r.tracking_number for r in reports],
        [r.kind for r in reports],
        [r.occurred_at for r in reports],
        [r.detail for r in reports],
    )
    return {(r["tracking_number"], r["kind"], r["occurred_at"]) for r in rows}


async def track_shipments(conn: Conn, parcels: Mapping[str, Parcel]) -> None:
    """Save where the carrier's updates left the shipments, by tracking number."""
    if not parcels:
        return
    moved = list(parcels.items())
    await conn.execute(
        "UPDATE shipments s SET last_carrier_status = p.status, last_carrier_status_at = p.status_at,"
        " delivered_at = p.delivered_at, exception_at = p.exception_at, exception_detail = p.exception_detail"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::text[])"
        " AS p(tracking_number, status, status_at, delivered_at, exception_at, exception_detail)"
        " WHERE s.tracking_number = p.tracking_number",
        [number for number, _ in moved],
        [p.status for _, p in moved],
        [p.status_at for _, p in moved],
        [p.delivered_at for _, p in moved],
        [p.exception_at for _, p in moved],
        [p.exception_detail for _, p in moved],
    )


async def shipments_delivered(
    conn: Conn, order_ids: Iterable[UUID], ended_purchase_orders: Iterable[str]
) -> dict[UUID, list[bool]]:
    """For each of these orders, for each shipment still meant to ship (a pick task not emptied or withdrawn, a
    purchase order not declined or withdrawn): whether its parcel has been delivered."""
    rows = await conn.fetch(
        "SELECT p.order_id, s.delivered_at IS NOT NULL AS delivered FROM pick_tasks p"
        " LEFT JOIN shipments s ON s.pick_task_id = p.pick_task_id"
        " WHERE p.order_id = ANY($1::uuid[]) AND p.status <> ALL($2::text[])"
        " UNION ALL"
        " SELECT p.order_id, s.delivered_at IS NOT NULL FROM purchase_orders p"
        " LEFT JOIN shipments s ON s.pick_task_id = p.purchase_order_id"
        " WHERE p.order_id = ANY($1::uuid[]) AND p.status <> ALL($3::text[])",
        list(set(order_ids)),
        list(CLOSED_EMPTY),
        list(ended_purchase_orders),
    )
    delivered: dict[UUID, list[bool]] = {}
    for r in rows:
        delivered.setdefault(r["order_id"], []).append(bool(r["delivered"]))
    return delivered


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
