"""Notifications' SQL: contacts, what waits for stock, messages, their deliveries per channel and every attempt."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts.events import HeldOrderCancelled, OrderRejected, OrderValidated

from .domain import Intent
from .planning import MessageKey, Planned, Unrenderable

# Messages rendered, and deliveries handed over (one SMTP session), per step: each step's statements and
# commits are shared by the batch.
BATCH = 200


async def save_contacts(conn: Conn, orders: list[OrderValidated | OrderRejected | HeldOrderCancelled]) -> None:
    """Whom to tell about each order; the first word on an order stands."""
    if not orders:
        return
    await conn.execute(
        "INSERT INTO contacts (order_id, email, name, reference, sales_channel)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) ON CONFLICT DO NOTHING",
        [order.order_id for order in orders],
        [order.customer.email for order in orders],
        [order.customer.name for order in orders],
        [order.external_id for order in orders],
        [order.channel for order in orders],
    )


async def backordered(conn: Conn, order_ids: Iterable[UUID]) -> dict[UUID, dict[str, int]]:
    """What of each order waits for stock (orders with nothing waiting left out), locked until the transaction
    ends, in the orders' id order (so two transactions over the same orders cannot deadlock)."""
    rows = await conn.fetch(
        "SELECT order_id, items FROM backorders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE",
        sorted(set(order_ids)),
    )
    return {row["order_id"]: dict(row["items"] or {}) for row in rows}


async def save_backordered(conn: Conn, items: Mapping[UUID, Mapping[str, int]]) -> None:
    if not items:
        return
    await conn.execute(
        "INSERT INTO backorders (order_id, items) SELECT * FROM unnest($1::uuid[], $2::jsonb[])"
        " ON CONFLICT (order_id) DO UPDATE SET items = excluded.items, updated_at = now()",
        list(items),
        [dict(waiting) for waiting in items.values()],
    )


async def add_messages(conn: Conn, intents: list[Intent]) -> None:
    """Messages to render once their recipient is known (the planning's, `unplanned`): one per (order, kind,
    shipment); one that exists already is left as it is."""
    if not intents:
        return
    await conn.execute(
        "INSERT INTO messages (order_id, kind, shipment_key, facts)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) ON CONFLICT DO NOTHING",
        [intent.order_id for intent in intents],
        [intent.kind for intent in intents],
        [intent.shipment_key for intent in intents],
        [intent.facts for intent in intents],
    )


async def unplanned(conn: Conn) -> list[asyncpg.Record]:
    """Messages not rendered yet whose recipient is known, oldest first, read without a lock (to be rendered outside
    any transaction, then kept with `keep_rendered`): what they are rendered from does not change once written (a
    message's facts and its order's contact are each kept as first written)."""
    return await conn.fetch(
        "SELECT m.order_id, m.kind, m.shipment_key, m.facts, c.name, c.reference, c.sales_channel"
        " FROM messages m JOIN contacts c USING (order_id)"
        " WHERE m.planned_at IS NULL ORDER BY m.created_at LIMIT $1",
        BATCH,
    )


def sending(rendered: str) -> str:
    """What the deliveries `leased` (a query's name) are handed over with: the message's rendering, as the relation
    `rendered` has it, and whom it is for."""
    return (
        "SELECT l.order_id, l.kind, l.shipment_key, l.channel, l.body, l.attempts,"
        " m.subject, m.text_body, m.html_body, c.email, c.name"
        f" FROM leased l JOIN {rendered} m USING (order_id, kind, shipment_key) JOIN contacts c USING (order_id)"
    )


# Renderings kept, in one statement (its own transaction: nothing sits open between its steps): the messages still
# not rendered claimed, passing over those another instance holds (which then has them rendered; `SKIP LOCKED`, so no
# instance waits for another or deadlocks with it); each kept with its rendering and one pending delivery per
# channel, leased to the caller from the moment it is written (the caller's own clock started before): not leased
# again in a transaction of its own, which was an update of each delivery (new index entries, as its index names the
# status) only to say who sends it.
KEEP_RENDERED = """
WITH claimed AS MATERIALIZED (
    SELECT m.order_id, m.kind, m.shipment_key FROM messages m
    JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS k(order_id, kind, shipment_key)
    USING (order_id, kind, shipment_key)
    WHERE m.planned_at IS NULL FOR UPDATE OF m SKIP LOCKED
), kept AS (
    UPDATE messages m SET planned_at = now(), subject = p.subject, text_body = p.text_body, html_body = p.html_body
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        AS p(order_id, kind, shipment_key, subject, text_body, html_body)
    JOIN claimed USING (order_id, kind, shipment_key)
    WHERE (m.order_id, m.kind, m.shipment_key) = (p.order_id, p.kind, p.shipment_key)
    RETURNING m.order_id, m.kind, m.shipment_key, m.subject, m.text_body, m.html_body
), leased AS (
    INSERT INTO deliveries (order_id, kind, shipment_key, channel, body, next_try_at)
    SELECT d.*, clock_timestamp() + make_interval(secs => $12)
    FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], $11::bytea[])
        AS d(order_id, kind, shipment_key, channel, body)
    JOIN kept USING (order_id, kind, shipment_key)
    ON CONFLICT DO NOTHING
    RETURNING order_id, kind, shipment_key, channel, body, attempts
)
""" + sending("kept")  # the renderings as kept: a statement does not see its own changes in the table


async def keep_rendered(conn: Conn, planned: list[Planned], lease_seconds: float) -> list[asyncpg.Record]:
    """Keep the renderings of those of these messages that are still not rendered (`KEEP_RENDERED`), and return
    their deliveries, leased to the caller for `lease_seconds`, as `lease_due` returns what it leases."""
    if not planned:
        return []
    deliveries = [(p.key, channel, body) for p in planned for channel, body in p.deliveries]
    return await conn.fetch(
        KEEP_RENDERED,
        *_columns([p.key for p in planned]),
        [p.subject for p in planned],
        [p.text for p in planned],
        [p.html for p in planned],
        *_columns([key for key, _, _ in deliveries]),
        [channel for _, channel, _ in deliveries],
        [body for _, _, body in deliveries],
        lease_seconds,
    )


def _columns(keys: list[MessageKey]) -> tuple[list[UUID], list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]


async def set_aside(conn: Conn, unrenderable: list[Unrenderable]) -> None:
    """Set aside the messages their templates cannot render, with the reason, so that they hold up no other; one
    another instance kept meanwhile is left as it is."""
    if not unrenderable:
        return
    unrenderable = sorted(unrenderable, key=lambda u: u.key)  # one order of locks for every instance
    await conn.execute(
        "UPDATE messages m SET planned_at = now(), render_error = u.error"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(order_id, kind, shipment_key, error)"
        " WHERE (m.order_id, m.kind, m.shipment_key) = (u.order_id, u.kind, u.shipment_key)"
        " AND m.planned_at IS NULL",
        *_columns([u.key for u in unrenderable]),
        [u.error for u in unrenderable],
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
        f" {sending('messages')}",
        BATCH,
        lease_seconds,
    )


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: then the delivery is sent (no error), set aside as undeliverable, retried in
    `retry_in` s, or failed for good (None)."""

    key: MessageKey
    channel: str
    attempt: int
    at: datetime
    error: str | None
    duration_ms: int
    retry_in: float | None
    undeliverable: bool = False

    @property
    def result(self) -> str:
        """What became of the delivery, as the metrics name it."""
        if self.error is None:
            return "sent"
        if self.undeliverable:
            return "undeliverable"
        return "retry" if self.retry_in is not None else "gave_up"


async def record_attempts(conn: Conn, attempts: list[Attempt]) -> None:
    """Log the attempts and move their deliveries on, in one statement: no transaction stays open between two (a
    process at a low CPU priority can be kept from a core for seconds there, holding back the database's cleanup)."""
    if not attempts:
        return
    await conn.execute(
        "WITH a AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],"
        "   $6::timestamptz[], $7::text[], $8::int[], $9::float8[], $10::bool[])"
        "   AS a(order_id, kind, shipment_key, channel, attempt, at, error, duration_ms, retry_in, undeliverable)),"
        " logged AS (INSERT INTO delivery_attempts (order_id, kind, shipment_key, channel, attempt, attempted_at,"
        "   succeeded, detail, duration_ms)"
        "   SELECT order_id, kind, shipment_key, channel, attempt, at, error IS NULL, error, duration_ms FROM a)"
        " UPDATE deliveries d SET attempts = a.attempt, last_error = a.error,"
        " status = CASE WHEN a.error IS NULL THEN 'sent' WHEN a.undeliverable THEN 'undeliverable'"
        " WHEN a.retry_in IS NULL THEN 'failed' ELSE 'pending' END,"
        " sent_at = CASE WHEN a.error IS NULL THEN a.at ELSE d.sent_at END,"
        " next_try_at = CASE WHEN a.retry_in IS NULL THEN d.next_try_at ELSE a.at + make_interval(secs => a.retry_in)"
        " END"
        " FROM a"
        " WHERE (d.order_id, d.kind, d.shipment_key, d.channel) = (a.order_id, a.kind, a.shipment_key, a.channel)",
        *_columns([a.key for a in attempts]),
        [a.channel for a in attempts],
        [a.attempt for a in attempts],
        [a.at for a in attempts],
        [a.error for a in attempts],
        [a.duration_ms for a in attempts],
        [a.retry_in for a in attempts],
        [a.undeliverable for a in attempts],
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
