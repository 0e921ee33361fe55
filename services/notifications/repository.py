"""Notifications' SQL: contacts, and the messages with their delivery state."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.db import Conn
from shared.events import Customer

from .domain import Intent

SEND_BATCH = 50


async def save_contact(conn: Conn, order_id: UUID, customer: Customer) -> None:
    await conn.execute(
        "INSERT INTO contacts (order_id, email, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        order_id,
        customer.email,
        customer.name,
    )


async def add_message(conn: Conn, intent: Intent) -> bool:
    """False when this (order, kind) message exists already."""
    return bool(
        await conn.fetchval(
            "INSERT INTO messages (order_id, kind, facts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            intent.order_id,
            intent.kind,
            intent.facts,
        )
    )


async def claim_due(conn: Conn) -> list[asyncpg.Record]:
    """Pending messages whose recipient is known, locked so that other instances skip them."""
    return await conn.fetch(
        "SELECT m.order_id, m.kind, m.facts, m.attempts, c.email, c.name FROM messages m"
        " JOIN contacts c USING (order_id)"
        " WHERE m.status = 'pending' AND m.next_try_at <= now() ORDER BY m.created_at LIMIT $1"
        " FOR UPDATE OF m SKIP LOCKED",
        SEND_BATCH,
    )


async def mark_sent(conn: Conn, order_id: UUID, kind: str) -> None:
    await conn.execute(
        "UPDATE messages SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL"
        " WHERE order_id = $1 AND kind = $2",
        order_id,
        kind,
    )


async def mark_failed(conn: Conn, order_id: UUID, kind: str, error: str, retry_in: float) -> None:
    await conn.execute(
        "UPDATE messages SET attempts = attempts + 1, last_error = $3,"
        " next_try_at = now() + make_interval(secs => $4) WHERE order_id = $1 AND kind = $2",
        order_id,
        kind,
        error,
        retry_in,
    )


async def order_messages(conn: Conn, order_id: UUID) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT kind, channel, status, attempts, last_error, created_at, sent_at FROM messages"
        " WHERE order_id = $1 ORDER BY created_at, kind",
        order_id,
    )
    return [dict(r) for r in rows]
