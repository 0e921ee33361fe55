"""Fulfillment's SQL for dropship: purchase orders, the suppliers' reports, and their parcels among the order's
shipments. Decisions about a purchase order hold its order's lock (services.fulfillment.repository.lock_orders)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts.events import PurchaseOrderIssued, SupplierReported

from .repository import lock_orders

COLUMNS = (
    "purchase_order_id, order_id, supplier_id, lines, held, ship_to, service_level, status, issued_at, answer_by,"
    " ship_by"
)


@dataclass(frozen=True)
class NewPurchaseOrder:
    issued: PurchaseOrderIssued
    status: str  # issued, or cancelled when the whole order was cancelled first


def _lines(lines: Mapping[str, int]) -> list[dict[str, object]]:
    return [{"sku": sku, "quantity": n} for sku, n in sorted(lines.items())]


def quantities(lines: list[dict[str, object]]) -> dict[str, int]:
    return {str(line["sku"]): int(str(line["quantity"])) for line in lines}


async def insert(conn: Conn, new: Iterable[NewPurchaseOrder]) -> set[UUID]:
    """Record the purchase orders; returns the ids of those inserted, not of those recorded before."""
    inserted = set()
    for n in new:
        po = n.issued
        lines = [line.model_dump() for line in po.lines]
        if await conn.fetchval(
            f"INSERT INTO purchase_orders ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT DO NOTHING RETURNING true",
            po.purchase_order_id,
            po.order_id,
            po.supplier_id,
            lines,
            lines,
            po.ship_to.model_dump(mode="json"),
            po.service_level,
            n.status,
            po.issued_at,
            po.answer_by,
            po.ship_by,
        ):
            inserted.add(po.purchase_order_id)
    return inserted


async def orders_of(conn: Conn, purchase_order_ids: Iterable[UUID]) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT order_id FROM purchase_orders WHERE purchase_order_id = ANY($1::uuid[])",
        list(set(purchase_order_ids)),
    )
    return {r["order_id"] for r in rows}


async def lock(conn: Conn, purchase_order_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM purchase_orders WHERE purchase_order_id = $1 FOR UPDATE", purchase_order_id
    )


async def lock_of_order(conn: Conn, order_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM purchase_orders WHERE order_id = $1 ORDER BY purchase_order_id FOR UPDATE", order_id
    )


async def cancel(conn: Conn, purchase_order_id: UUID, at: datetime) -> UUID:
    """Withdraw the purchase order (a cancellation of the order); returns its order id."""
    order_id: UUID = await conn.fetchval(
        "UPDATE purchase_orders SET status = 'cancelled', held = '[]', updated_at = $2"
        " WHERE purchase_order_id = $1 RETURNING order_id",
        purchase_order_id,
        at,
    )
    return order_id


async def set_status(conn: Conn, purchase_order_id: UUID, status: str, held: Mapping[str, int], at: datetime) -> None:
    await conn.execute(
        "UPDATE purchase_orders SET status = $2, held = $3, answered_at = coalesce(answered_at, $4), updated_at = now()"
        " WHERE purchase_order_id = $1",
        purchase_order_id,
        status,
        _lines(held),
        at,
    )


async def record_report(conn: Conn, event_id: UUID, report: SupplierReported, outcome: str) -> None:
    await conn.execute(
        "INSERT INTO supplier_reports (event_id, purchase_order_id, kind, occurred_at, outcome)"
        " VALUES ($1, $2, $3, $4, $5)",
        event_id,
        report.purchase_order_id,
        report.kind,
        report.occurred_at,
        outcome,
    )


async def statuses_of_order(conn: Conn, order_id: UUID, besides: UUID | None = None) -> list[str]:
    rows = await conn.fetch(
        "SELECT status FROM purchase_orders WHERE order_id = $1 AND purchase_order_id IS DISTINCT FROM $2",
        order_id,
        besides,
    )
    return [r["status"] for r in rows]


async def statuses_of_orders(conn: Conn, order_ids: Iterable[UUID]) -> dict[UUID, list[str]]:
    """The statuses of these orders' purchase orders, by order (an order with none is left out)."""
    rows = await conn.fetch(
        "SELECT order_id, status FROM purchase_orders WHERE order_id = ANY($1::uuid[])", list(set(order_ids))
    )
    statuses: dict[UUID, list[str]] = {}
    for r in rows:
        statuses.setdefault(r["order_id"], []).append(r["status"])
    return statuses


async def tracking_number_taken(conn: Conn, tracking_number: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM shipments WHERE tracking_number = $1", tracking_number))


async def insert_shipment(
    conn: Conn, tracking_number: str, po: asyncpg.Record, carrier: str, held: Mapping[str, int], shipped_at: datetime
) -> None:
    """The supplier's parcel, among the order's shipments: carrier updates find it by its tracking number."""
    await conn.execute(
        "INSERT INTO shipments (tracking_number, pick_task_id, order_id, carrier, lines, leaves_on, shipped_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tracking_number,
        po["purchase_order_id"],
        po["order_id"],
        carrier,
        _lines(held),
        shipped_at.date(),
        shipped_at,
    )


async def lock_unanswered(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Purchase orders with no answer by their deadline, their orders' lock rows taken first (as every decision
    about an order's shipments takes them), then the purchase orders themselves, still unanswered."""
    due = await conn.fetch(
        "SELECT DISTINCT order_id FROM purchase_orders WHERE status = 'issued' AND answer_by <= $1 LIMIT $2", now, limit
    )
    if not due:
        return []
    ids = sorted(r["order_id"] for r in due)
    await lock_orders(conn, ids)
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM purchase_orders WHERE order_id = ANY($1::uuid[]) AND status = 'issued'"
        " AND answer_by <= $2 ORDER BY purchase_order_id FOR UPDATE",
        ids,
        now,
    )


async def open_purchase_orders(conn: Conn, limit: int = 100) -> list[dict[str, object]]:
    """Purchase orders still with their suppliers (issued or accepted, not shipped), oldest first: `oms dropship`."""
    rows = await conn.fetch(
        "SELECT purchase_order_id, order_id, supplier_id, held AS lines, status, issued_at, answer_by, ship_by"
        " FROM purchase_orders WHERE status IN ('issued', 'acknowledged', 'partially_accepted')"
        " ORDER BY issued_at, purchase_order_id LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]
