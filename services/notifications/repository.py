"""Notifications' SQL: contacts, what waits for stock, messages, their deliveries per channel and every attempt."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts.events import HeldOrderCancelled, OrderRejected, OrderValidated

from .domain import Intent

BATCH = 50
MessageKey = tuple[UUID, str, str]  # (order_id, kind, shipment_key)


async def save_contact(conn: Conn, order: OrderValidated | OrderRejected | HeldOrderCancelled) -> None:
    await conn.execute(
        "INSERT INTO contacts (order_id, email, name, reference, sales_channel) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING",
        order.order_id,
        order.customer.email,
        order.customer.name,
        order.external_id,
        order.channel,
    )


async def backordered(conn: Conn, order_id: UUID) -> dict[str, int]:
    """What of the order waits for stock, locked until the transaction ends."""
    items = await conn.fetchval("SELECT items FROM backorders WHERE order_id = $1 FOR UPDATE", order_id)
    return dict(items or {})


async def save_backordered(conn: Conn, order_id: UUID, items: Mapping[str, int]) -> None:
    await conn.execute(
        "INSERT INTO backorders (order_id, items) VALUES ($1, $2)"
        " ON CONFLICT (order_id) DO UPDATE SET items = excluded.items, updated_at = now()",
        order_id,
        dict(items),
    )


async def add_message(conn: Conn, intent: Intent) -> bool:
    """False when this (order, kind, shipment) message exists already."""
    return bool(
        await conn.fetchval(
            "INSERT INTO messages (order_id, kind, shipment_key, facts) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            intent.order_id,
            intent.kind,
            intent.shipment_key,
            intent.facts,
        )
    )


async def claim_unplanned(conn: Conn) -> list[asyncpg.Record]:
    """Messages not rendered yet whose recipient is known, locked so that other instances skip them."""
    return await conn.fetch(
        "SELECT m.order_id, m.kind, m.shipment_key, m.facts, c.name, c.reference, c.sales_channel"
        " FROM messages m JOIN contacts c USING (order_id)"
        " WHERE m.planned_at IS NULL ORDER BY m.created_at LIMIT $1 FOR UPDATE OF m SKIP LOCKED",
        BATCH,
    )


async def plan(
    conn: Conn, key: MessageKey, subject: str, text: str, html: str, deliveries: list[tuple[str, bytes | None]]
) -> None:
    """Keep what was rendered and create one pending delivery per channel: (channel, webhook body or None)."""
    await conn.execute(
        "UPDATE messages SET planned_at = now(), subject = $4, text_body = $5, html_body = $6"
        " WHERE order_id = $1 AND kind = $2 AND shipment_key = $3",
        *key,
        subject,
        text,
        html,
    )
    await conn.executemany(
        "INSERT INTO deliveries (order_id, kind, shipment_key, channel, body) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING",
        [(*key, channel, body) for channel, body in deliveries],
    )


async def unrenderable(conn: Conn, key: MessageKey, error: str) -> None:
    """Set a message aside that its template cannot render, so that it does not hold up the others."""
    await conn.execute(
        "UPDATE messages SET planned_at = now(), render_error = $4"
        " WHERE order_id = $1 AND kind = $2 AND shipment_key = $3",
        *key,
        error,
    )


async def lease_due(conn: Conn, lease_seconds: float) -> list[asyncpg.Record]:
    """Deliveries due now, with what to send, leased for `lease_seconds`: they are not due again before then, so
    other instances leave them alone once this statement commits, and take them up if the lease runs out."""
    return await conn.fetch(
        "WITH due AS (SELECT order_id, kind, shipment_key, channel FROM deliveries"
        "   WHERE status = 'pending' AND next_try_at <= now() ORDER BY next_try_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
        " leased AS (UPDATE deliveries d SET next_try_at = now() + make_interval(secs => $2) FROM due"
        "   WHERE (d.order_id, d.kind, d.shipment_key, d.channel) = (due.order_id, due.kind, due.shipment_key,"
        "   due.channel) RETURNING d.order_id, d.kind, d.shipment_key, d.channel, d.body, d.attempts)"
        " SELECT l.order_id, l.kind, l.shipment_key, l.channel, l.body, l.attempts,"
        " m.subject, m.text_body, m.html_body, c.email, c.name"
        " FROM leased l JOIN messages m USING (order_id, kind, shipment_key) JOIN contacts c USING (order_id)",
        BATCH,
        lease_seconds,
    )


async def record_attempt(
    conn: Conn,
    key: MessageKey,
    channel: str,
    attempt: int,
    at: datetime,
    error: str | None,
    duration_ms: int,
    retry_in: float | None,
    *,
    undeliverable: bool = False,
) -> None:
    """Log the attempt; then the delivery is sent (no error), set aside as undeliverable, retried in `retry_in`
    s, or failed for good (None)."""
    await conn.execute(
        "INSERT INTO delivery_attempts (order_id, kind, shipment_key, channel, attempt, attempted_at, succeeded,"
        " detail, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        *key,
        channel,
        attempt,
        at,
        error is None,
        error,
        duration_ms,
    )
    await conn.execute(
        "UPDATE deliveries SET attempts = $5, last_error = $6,"
        " status = CASE WHEN $6::text IS NULL THEN 'sent' WHEN $9 THEN 'undeliverable'"
        " WHEN $7::float8 IS NULL THEN 'failed' ELSE 'pending' END,"
        " sent_at = CASE WHEN $6::text IS NULL THEN $8 ELSE sent_at END,"
        " next_try_at = CASE WHEN $7::float8 IS NULL THEN next_try_at ELSE $8 + make_interval(secs => $7) END"
        " WHERE order_id = $1 AND kind = $2 AND shipment_key = $3 AND channel = $4",
        *key,
        channel,
        attempt,
        error,
        retry_in,
        at,
        undeliverable,
    )


async def order_messages(conn: Conn, order_id: UUID) -> list[dict[str, object]]:
    """Each message of an order with its delivery state per channel (one row per message and channel)."""
    rows = await conn.fetch(
        "SELECT m.kind, m.shipment_key, m.created_at, coalesce(d.channel, 'email') AS channel,"
        " coalesce(d.status, 'pending') AS status, coalesce(d.attempts, 0) AS attempts, d.last_error, d.sent_at"
        " FROM messages m LEFT JOIN deliveries d USING (order_id, kind, shipment_key)"
        " WHERE m.order_id = $1 ORDER BY m.created_at, m.kind, d.channel",
        order_id,
    )
    return [dict(r) for r in rows]
