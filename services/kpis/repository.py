"""The KPI facts in SQL: one statement per table for a batch's events (first or latest by the events' own times, so
redelivery and any reading order give the same rows), and the facts of the orders placed in a period."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn


def _json(values: Sequence[Any]) -> list[str]:
    # jsonb keeps keys in an order of its own: sorting them here only costs (json.dumps makes an encoder per call).
    return [json.dumps(v) for v in values]


def _columns(rows: Sequence[Sequence[Any]], width: int, json_at: Collection[int] = ()) -> list[list[Any]]:
    """The rows' values column by column, for one `unnest($1::t[], $2::t[], ...)` statement; the columns at `json_at`
    as JSON text (cast to jsonb in the statement)."""
    return [_json(c) if i in json_at else c for i, c in enumerate([row[i] for row in rows] for i in range(width))]


async def save_orders(conn: Conn, rows: Sequence[tuple[UUID, str, datetime, str, dict[str, int]]]) -> None:
    await conn.execute(
        "INSERT INTO orders (order_id, channel, placed_at, ship_country, ordered)"
        " SELECT o, c, p, s, d::jsonb FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])"
        " AS t(o, c, p, s, d) ON CONFLICT (order_id) DO NOTHING",
        *_columns(rows, 5, json_at={4}),
    )


async def save_rejections(conn: Conn, rows: Sequence[tuple[UUID, str, datetime]]) -> None:
    await conn.execute(
        "INSERT INTO rejections (order_id, channel, rejected_at)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) ON CONFLICT (order_id) DO NOTHING",
        *_columns(rows, 3),
    )


async def save_holds_placed(conn: Conn, rows: Sequence[tuple[UUID, str, datetime]]) -> None:
    await conn.execute(
        "INSERT INTO holds (order_id, channel, held_at)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS t(o, c, h)"
        " ON CONFLICT (order_id) DO UPDATE SET channel = excluded.channel,"
        " held_at = least(holds.held_at, excluded.held_at)",
        *_columns(rows, 3),
    )


async def save_holds_ended(conn: Conn, rows: Sequence[tuple[UUID, str | None, datetime, bool]]) -> None:
    """The order left hold (released, or cancelled: `cancelled`); the channel when the event names it."""
    await conn.execute(
        "INSERT INTO holds (order_id, channel, ended_at, cancelled)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::boolean[])"
        " ON CONFLICT (order_id) DO UPDATE SET channel = coalesce(holds.channel, excluded.channel),"
        " ended_at = greatest(holds.ended_at, excluded.ended_at), cancelled = holds.cancelled OR excluded.cancelled",
        *_columns(rows, 4),
    )


async def save_first_allocations(conn: Conn, rows: Sequence[tuple[UUID, str, dict[str, int], datetime]]) -> None:
    """One row per order (the caller keeps a batch's earliest); an earlier decision read later replaces it."""
    await conn.execute(
        "INSERT INTO first_allocations (order_id, outcome, reserved, allocated_at)"
        " SELECT o, c, r::jsonb, a FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) AS t(o, c, r, a)"
        " ON CONFLICT (order_id) DO UPDATE SET outcome = excluded.outcome, reserved = excluded.reserved,"
        " allocated_at = excluded.allocated_at WHERE excluded.allocated_at < first_allocations.allocated_at",
        *_columns(rows, 4, json_at={2}),
    )


async def save_cancellations(conn: Conn, rows: Sequence[tuple[UUID, datetime]]) -> None:
    await conn.execute(
        "INSERT INTO cancellations (order_id, cancelled_at) SELECT * FROM unnest($1::uuid[], $2::timestamptz[])"
        " ON CONFLICT (order_id) DO NOTHING",
        *_columns(rows, 2),
    )


async def save_cancelled_lines(conn: Conn, rows: Sequence[tuple[UUID, UUID, dict[str, int]]]) -> None:
    await conn.execute(
        "INSERT INTO cancelled_lines (event_id, order_id, lines)"
        " SELECT e, o, l::jsonb FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(e, o, l) ON CONFLICT DO NOTHING",
        *_columns(rows, 3, json_at={2}),
    )


async def save_shipments(
    conn: Conn, rows: Sequence[tuple[UUID, UUID, str, str, str | None, datetime, date | None, dict[str, int]]]
) -> None:
    await conn.execute(
        "INSERT INTO shipments (pick_task_id, order_id, warehouse_id, carrier, service, shipped_at,"
        " promised_delivery, lines)"
        " SELECT p, o, w, c, s, a, d, l::jsonb FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],"
        " $6::timestamptz[], $7::date[], $8::text[]) AS t(p, o, w, c, s, a, d, l)"
        " ON CONFLICT (pick_task_id) DO NOTHING",
        *_columns(rows, 8, json_at={7}),
    )


async def save_deliveries(conn: Conn, rows: Sequence[tuple[UUID, datetime]]) -> None:
    await conn.execute(
        "INSERT INTO deliveries (order_id, delivered_at) SELECT * FROM unnest($1::uuid[], $2::timestamptz[])"
        " ON CONFLICT (order_id) DO UPDATE SET delivered_at = greatest(deliveries.delivered_at, excluded.delivered_at)",
        *_columns(rows, 2),
    )


async def save_exceptions(conn: Conn, rows: Sequence[tuple[UUID, datetime, UUID, bool]]) -> None:
    await conn.execute(
        "INSERT INTO delivery_exceptions (pick_task_id, occurred_at, order_id, documents)"
        " SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::boolean[]) ON CONFLICT DO NOTHING",
        *_columns(rows, 4),
    )


async def save_returns(conn: Conn, rows: Sequence[tuple[UUID, UUID, bool, datetime]]) -> None:
    await conn.execute(
        "INSERT INTO returns (return_id, order_id, damaged, authorised_at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::boolean[], $4::timestamptz[]) ON CONFLICT DO NOTHING",
        *_columns(rows, 4),
    )


ChangeStep = Literal["requested", "applied", "refused"]


async def save_change_steps(conn: Conn, step: ChangeStep, rows: Sequence[tuple[UUID, str, datetime]]) -> None:
    """When changes were passed on, applied or refused (one row per change in the batch; the first time kept)."""
    column = f"{step}_at"
    await conn.execute(
        f"INSERT INTO order_changes (order_id, change_id, {column})"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])"
        f" ON CONFLICT (order_id, change_id) DO UPDATE SET {column} = least(order_changes.{column}, excluded.{column})",
        *_columns(rows, 3),
    )


async def save_changed_lines(conn: Conn, rows: Sequence[tuple[UUID, str, int, dict[str, int]]]) -> None:
    """Units per SKU an order holds after each applied change, with the order's version it made."""
    await conn.execute(
        "INSERT INTO order_changes (order_id, change_id, order_version, lines)"
        " SELECT o, c, v, l::jsonb FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS t(o, c, v, l)"
        " ON CONFLICT (order_id, change_id)"
        " DO UPDATE SET order_version = excluded.order_version, lines = excluded.lines",
        *_columns(rows, 4, json_at={3}),
    )


async def save_change_money(
    conn: Conn, column: Literal["due_back", "refunded"], rows: Sequence[tuple[UUID, str, str, Decimal]]
) -> None:
    """What changes made due back, or what of it was refunded (one row per change in the batch), in its currency."""
    await conn.execute(
        f"INSERT INTO order_changes (order_id, change_id, currency, {column})"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[])"
        f" ON CONFLICT (order_id, change_id) DO UPDATE SET currency = excluded.currency, {column} = excluded.{column}",
        *_columns(rows, 4),
    )


async def save_products(conn: Conn, rows: Sequence[tuple[str, int]]) -> list[str]:
    """The products' weights; returns the SKUs whose weight is new or changed (a catalogue sent again changes none)."""
    weighed = await conn.fetch(
        "INSERT INTO products (sku, weight_grams) SELECT * FROM unnest($1::text[], $2::int[])"
        " ON CONFLICT (sku) DO UPDATE SET weight_grams = excluded.weight_grams"
        " WHERE products.weight_grams IS DISTINCT FROM excluded.weight_grams RETURNING sku",
        *_columns(rows, 2),
    )
    return [r["sku"] for r in weighed]


async def note_changes(conn: Conn, orders: Collection[UUID]) -> None:
    """The orders whose facts this transaction changed, for the gauges' next round."""
    await conn.execute("INSERT INTO facts_changed (order_id) SELECT unnest($1::uuid[])", list(orders))


async def note_weights_changed(conn: Conn, skus: Collection[str]) -> None:
    """The SKUs whose weight this transaction set: the gauges' next round reads again the orders shipping them."""
    await conn.execute("INSERT INTO facts_changed (sku) SELECT unnest($1::text[])", list(skus))


async def snapshot(conn: Conn) -> str:
    """The transaction's snapshot (in a repeatable read transaction, what every statement of it sees)."""
    return str(await conn.fetchval("SELECT pg_current_snapshot()::text"))


@dataclass(frozen=True)
class Changes:
    """What the transactions committed since a snapshot changed: orders, and SKUs whose weight they set."""

    orders: frozenset[UUID]
    weights: frozenset[str]
    everything: bool  # a row naming neither, noted by an earlier version for a product: read the whole window


async def changed_since(conn: Conn, seen: str) -> Changes:
    """What the transactions committed since the snapshot `seen` changed, as this transaction sees them."""
    rows = await conn.fetch(
        "SELECT DISTINCT order_id, sku FROM facts_changed WHERE changed_by >= pg_snapshot_xmin($1::text::pg_snapshot)"
        " AND NOT pg_visible_in_snapshot(changed_by, $1::text::pg_snapshot)",
        seen,
    )
    return Changes(
        frozenset(r["order_id"] for r in rows if r["order_id"] is not None),
        frozenset(r["sku"] for r in rows if r["sku"] is not None),
        any(r["order_id"] is None and r["sku"] is None for r in rows),
    )


async def forget_changes(conn: Conn, seen: str) -> None:
    """Delete the changes every transaction of the snapshot `seen` sees: read by a round at that snapshot."""
    await conn.execute(
        "DELETE FROM facts_changed WHERE changed_by < pg_snapshot_xmin($1::text::pg_snapshot)",
        seen,
    )


# The orders placed in [since, until) (of those, the ones in $3 when it is given): validated ones by when they were
# placed, and those held at intake and never validated by when they were held.
PLACED = """
    SELECT order_id, channel, placed_at, ship_country, ordered FROM orders
    WHERE placed_at >= $1 AND placed_at < $2 {only}
    UNION ALL
    SELECT h.order_id, h.channel, h.held_at, NULL, '{{}}'::jsonb FROM holds h
    WHERE h.held_at >= $1 AND h.held_at < $2 AND h.channel IS NOT NULL {only}
      AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = h.order_id)
"""
# Those orders, each with everything the other tables know of it.
FACTS = (
    "WITH placed AS ("
    + PLACED
    + """)
SELECT p.*, a.outcome, a.reserved, h.held_at, h.ended_at AS hold_ended_at, d.delivered_at,
       c.order_id IS NOT NULL OR coalesce(h.cancelled, false) AS cancelled,
       coalesce((SELECT jsonb_agg(jsonb_build_object('carrier', s.carrier, 'service', s.service,
                   'shipped_at', s.shipped_at, 'promised', s.promised_delivery, 'lines', s.lines))
                 FROM shipments s WHERE s.order_id = p.order_id), '[]'::jsonb) AS shipments,
       coalesce((SELECT sum(v::int) FROM cancelled_lines x, jsonb_each_text(x.lines) AS l(k, v)
                 WHERE x.order_id = p.order_id), 0) AS units_cancelled,
       EXISTS (SELECT 1 FROM delivery_exceptions e WHERE e.order_id = p.order_id AND e.documents) AS document_exception,
       EXISTS (SELECT 1 FROM returns r WHERE r.order_id = p.order_id) AS returned,
       EXISTS (SELECT 1 FROM returns r WHERE r.order_id = p.order_id AND r.damaged) AS damaged,
       ch.requested AS changes_requested, ch.applied AS changes_applied, ch.refused AS changes_refused,
       money.due_back, money.refunded,
       (SELECT x.lines FROM order_changes x WHERE x.order_id = p.order_id AND x.lines IS NOT NULL
        ORDER BY x.order_version DESC LIMIT 1) AS changed_to
FROM placed p
CROSS JOIN LATERAL (
    SELECT count(x.requested_at) AS requested, count(x.applied_at) AS applied, count(x.refused_at) AS refused
    FROM order_changes x WHERE x.order_id = p.order_id
) ch
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_object_agg(m.currency, m.due_back::text) FILTER (WHERE m.due_back > 0), '{{}}') AS due_back,
           coalesce(jsonb_object_agg(m.currency, m.refunded::text) FILTER (WHERE m.refunded > 0), '{{}}') AS refunded
    FROM (SELECT currency, sum(due_back) AS due_back, sum(refunded) AS refunded FROM order_changes x
          WHERE x.order_id = p.order_id AND currency IS NOT NULL GROUP BY currency) m
) money
LEFT JOIN first_allocations a USING (order_id)
LEFT JOIN holds h USING (order_id)
LEFT JOIN deliveries d USING (order_id)
LEFT JOIN cancellations c USING (order_id)
"""
)


ALL_FACTS = FACTS.format(only="")
# By the orders' keys whatever the plan: `= ANY($3)` may become a filter tried on every order of the window.
SOME_FACTS = FACTS.format(only="AND order_id IN (SELECT unnest($3::uuid[]))")


async def shipping(conn: Conn, skus: Collection[str], since: datetime, until: datetime) -> list[UUID]:
    """The orders placed in [since, until) with a shipment holding one of `skus` (a shipment's lines by SKU)."""
    rows = await conn.fetch(
        "SELECT DISTINCT o.order_id FROM orders o JOIN shipments s USING (order_id)"
        " WHERE o.placed_at >= $1 AND o.placed_at < $2 AND s.lines ?| $3::text[]",
        since,
        until,
        list(skus),
    )
    return [r["order_id"] for r in rows]


async def placed(conn: Conn, since: datetime, until: datetime) -> list[UUID]:
    """The orders placed in [since, until), by key."""
    rows = await conn.fetch(f"SELECT order_id FROM ({PLACED.format(only='')}) p ORDER BY order_id", since, until)
    return [r["order_id"] for r in rows]


async def facts(
    conn: Conn, since: datetime, until: datetime, only: Collection[UUID] | None = None
) -> list[asyncpg.Record]:
    """The facts of the orders placed in [since, until), or of those of them in `only`."""
    if only is None:
        return await conn.fetch(ALL_FACTS, since, until)
    return await conn.fetch(SOME_FACTS, since, until, list(only))


async def rejections(conn: Conn, since: datetime, until: datetime) -> dict[str, int]:
    """Orders refused at intake in [since, until), per channel."""
    rows = await conn.fetch(
        "SELECT channel, count(*) AS orders FROM rejections WHERE rejected_at >= $1 AND rejected_at < $2"
        " GROUP BY channel",
        since,
        until,
    )
    return {r["channel"]: r["orders"] for r in rows}


async def weights(conn: Conn, skus: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT sku, weight_grams FROM products WHERE sku = ANY($1::text[])", list(skus))
    return {r["sku"]: r["weight_grams"] for r in rows}


async def on_hold(conn: Conn) -> list[asyncpg.Record]:
    """Per channel, the orders on hold now and when the oldest of them was held."""
    return await conn.fetch(
        "SELECT channel, count(*) AS orders, min(held_at) AS oldest FROM holds"
        " WHERE ended_at IS NULL AND held_at IS NOT NULL AND channel IS NOT NULL GROUP BY channel ORDER BY channel"
    )
