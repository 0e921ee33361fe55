"""Capture's SQL: orders with their progress and timeline, cancel requests (those held for an order not seen yet
too), Shopify deliveries, the catalogue copy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.backbone.db import Conn, columns, lock_names
from shared.contracts import events as ev
from shared.contracts.backorders import quantities
from shared.contracts.events import ItemQuantity, SubmittedOrder
from shared.contracts.ids import time_ordered_id

from . import change_repository, credit, risk
from .domain import Rejection
from .lifecycle import Progress, Step


@dataclass(frozen=True)
class NewOrder:
    """An order decided at intake, with the id it gets if its (channel, external_id) is new."""

    order_id: UUID
    order: SubmittedOrder
    total: Decimal
    status: str
    reasons: Sequence[Rejection]
    received_at: datetime


async def insert_orders(conn: Conn, new: Sequence[NewOrder]) -> set[UUID]:
    """Insert the orders (of distinct (channel, external_id)) in one statement; returns the ids of those
    inserted, not of those whose (channel, external_id) is known already."""
    if not new:
        return set()
    rows = await conn.fetch(
        "INSERT INTO orders (order_id, channel, external_id, status, reasons, received_at, placed_at, currency,"
        " total, document, ordered, account, paid)"
        " SELECT order_id, channel, external_id, status, reasons::jsonb, received_at, placed_at, currency, total,"
        " document::jsonb, ordered::jsonb, account, paid"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],"
        " $7::timestamptz[], $8::text[], $9::numeric[], $10::text[], $11::text[], $12::text[], $13::numeric[])"
        " WITH ORDINALITY AS o(order_id, channel, external_id, status, reasons, received_at, placed_at, currency,"
        " total, document, ordered, account, paid, n) ORDER BY n"
        " ON CONFLICT (channel, external_id) DO NOTHING RETURNING order_id",
        [n.order_id for n in new],
        [n.order.channel for n in new],
        [n.order.external_id for n in new],
        [n.status for n in new],
        [json.dumps([str(r) for r in n.reasons]) for n in new],
        [n.received_at for n in new],
        [n.order.placed_at for n in new],
        [n.order.currency for n in new],
        [n.total for n in new],
        [n.order.model_dump_json() for n in new],
        [json.dumps(quantities(n.order.lines)) for n in new],
        [n.order.customer.account for n in new],
        [credit.paid_at_intake(n.order) for n in new],
    )
    return {r["order_id"] for r in rows}


async def insert_order(
    conn: Conn, order: SubmittedOrder, total: Decimal, status: str, reasons: Sequence[Rejection], at: datetime
) -> UUID | None:
    """The new order's id, or None when (channel, external_id) is known already."""
    new = NewOrder(time_ordered_id(), order, total, status, reasons, at)
    return new.order_id if await insert_orders(conn, [new]) else None


async def known_external_ids(conn: Conn, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of these (channel, external_id) that name an order already."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT channel, external_id FROM orders JOIN unnest($1::text[], $2::text[]) AS k(channel, external_id)"
        " USING (channel, external_id)",
        [channel for channel, _ in wanted],
        [external_id for _, external_id in wanted],
    )
    return {(r["channel"], r["external_id"]) for r in rows}


async def find_by_external_id(conn: Conn, channel: str, external_id: str) -> tuple[UUID, str] | None:
    row = await conn.fetchrow(
        "SELECT order_id, status FROM orders WHERE channel = $1 AND external_id = $2", channel, external_id
    )
    return None if row is None else (row["order_id"], row["status"])


async def status_of(conn: Conn, order_id: UUID) -> str | None:
    return await conn.fetchval("SELECT status FROM orders WHERE order_id = $1", order_id)  # type: ignore[no-any-return]


async def channel_of(conn: Conn, order_id: UUID) -> str | None:
    return await conn.fetchval("SELECT channel FROM orders WHERE order_id = $1", order_id)  # type: ignore[no-any-return]


async def catalogue(conn: Conn, skus: Iterable[str]) -> dict[str, bool]:
    rows = await conn.fetch("SELECT sku, active FROM products WHERE sku = ANY($1::text[])", list(set(skus)))
    return {r["sku"]: r["active"] for r in rows}


PROGRESS = (
    "SELECT order_id, status, ordered, backordered, cancelled, shipped, received_at,"
    # The latest of the shipping steps tells whether every parcel shipped so far has arrived.
    " coalesce((SELECT t.status = 'partially_delivered' FROM order_timeline t WHERE t.order_id = o.order_id"
    "   AND t.status IN ('partially_shipped', 'shipped', 'partially_delivered') ORDER BY t.id DESC LIMIT 1),"
    "   false) AS parcels_delivered"
    " FROM orders o"
)


def _progress(row: Any) -> Progress:
    return Progress(
        row["status"],
        row["ordered"],
        row["backordered"],
        row["cancelled"],
        row["shipped"],
        row["received_at"],
        row["parcels_delivered"],
    )


async def lock_progress(conn: Conn, order_id: UUID) -> Progress | None:
    """The order's progress, locked until the transaction ends (events and cancel requests queue up)."""
    row = await conn.fetchrow(f"{PROGRESS} WHERE order_id = $1 FOR UPDATE", order_id)
    return None if row is None else _progress(row)


async def lock_progresses(conn: Conn, order_ids: Iterable[UUID]) -> dict[UUID, Progress]:
    """The progress of those of these orders capture knows, locked until the transaction ends (in order id
    order, as `lock_orders`)."""
    ids = sorted(set(order_ids))
    rows = await conn.fetch(f"{PROGRESS} WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE", ids)
    return {row["order_id"]: _progress(row) for row in rows}


async def add_steps(conn: Conn, steps: Sequence[tuple[UUID, str, datetime, str | None]]) -> None:
    """Intake's steps (order, status, when, detail), in the order given; each leaves the order in the status it
    names."""
    await conn.execute(
        "INSERT INTO order_timeline (order_id, status, occurred_at, detail, order_status)"
        " SELECT order_id, status, occurred_at, detail, status"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY"
        " AS s(order_id, status, occurred_at, detail, n) ORDER BY n",
        [step[0] for step in steps],
        [step[1] for step in steps],
        [step[2] for step in steps],
        [step[3] for step in steps],
    )


async def record(
    conn: Conn, order_id: UUID, progress: Progress, step: Step, at: datetime, rejection: str | None = None
) -> None:
    """Save the order's progress and add the step to its timeline, in one round trip; `rejection` is added
    to the order's rejection reasons."""
    await conn.execute(
        "WITH step AS (INSERT INTO order_timeline (order_id, status, occurred_at, detail, order_status)"
        " VALUES ($1, $3, $4, $5, $2))"
        " UPDATE orders SET status = $2, backordered = $6, cancelled = $7, shipped = $8, updated_at = now(),"
        " reasons = CASE WHEN $9::text IS NULL THEN reasons ELSE reasons || to_jsonb($9::text) END"
        " WHERE order_id = $1",
        order_id,
        progress.status,
        step.name,
        at,
        step.detail,
        dict(progress.backordered),
        dict(progress.cancelled),
        dict(progress.shipped),
        rejection,
    )


@dataclass(frozen=True)
class Recorded:
    """A step an event added to an order's timeline, and when it happened."""

    order_id: UUID
    step: Step
    at: datetime


async def record_all(
    conn: Conn, steps: Sequence[Recorded], progress: Mapping[UUID, Progress], rejections: Mapping[UUID, list[str]]
) -> None:
    """`record` for many orders in one round trip: the steps added to the timelines in the order given, each
    order's progress saved as it stands after its last step, `rejections` added to its rejection reasons."""
    if not steps:
        return
    orders = sorted(progress)
    await conn.execute(
        "WITH step AS (INSERT INTO order_timeline (order_id, status, occurred_at, detail, order_status)"
        " SELECT order_id, status, occurred_at, detail, order_status"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])"
        " WITH ORDINALITY AS s(order_id, status, occurred_at, detail, order_status, n) ORDER BY n)"
        " UPDATE orders o SET status = p.status, backordered = p.backordered::jsonb, cancelled = p.cancelled::jsonb,"
        " shipped = p.shipped::jsonb, updated_at = now(), reasons = o.reasons || p.rejections::jsonb"
        " FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])"
        " AS p(order_id, status, backordered, cancelled, shipped, rejections)"
        " WHERE o.order_id = p.order_id",
        [s.order_id for s in steps],
        [s.step.name for s in steps],
        [s.at for s in steps],
        [s.step.detail for s in steps],
        [s.step.status for s in steps],
        orders,
        [progress[o].status for o in orders],
        [json.dumps(dict(progress[o].backordered)) for o in orders],
        [json.dumps(dict(progress[o].cancelled)) for o in orders],
        [json.dumps(dict(progress[o].shipped)) for o in orders],
        [json.dumps(rejections.get(o, [])) for o in orders],
    )


async def find_cancel_request(conn: Conn, order_id: UUID, fingerprint: str) -> str | None:
    """The state of an earlier request with the same fingerprint, if there was one."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT state FROM cancel_requests WHERE order_id = $1 AND fingerprint = $2", order_id, fingerprint
    )


async def add_cancel_request(
    conn: Conn,
    order_id: UUID,
    fingerprint: str,
    event_id: UUID,
    lines: list[ItemQuantity] | None,
    reason: str,
    source: str,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO cancel_requests (order_id, fingerprint, event_id, lines, reason, source, requested_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        order_id,
        fingerprint,
        event_id,
        None if lines is None else [line.model_dump() for line in lines],
        reason,
        source,
        at,
    )


async def resolve_request(conn: Conn, order_id: UUID, cause: UUID | None, state: str, outcome: str) -> None:
    """Fulfillment's answer resolves the request whose event caused it; failing that (an answer that does
    not name its cause), the oldest open one: requests are answered in the order they were made."""
    await conn.execute(
        "UPDATE cancel_requests SET state = $3, outcome = $4, resolved_at = now()"
        " WHERE (order_id, fingerprint) = (SELECT order_id, fingerprint FROM cancel_requests"
        " WHERE order_id = $1 AND state = 'requested'"
        " ORDER BY event_id = $2 DESC NULLS LAST, requested_at LIMIT 1)",
        order_id,
        cause,
        state,
        outcome,
    )


async def order_ids(conn: Conn, keys: Iterable[tuple[str, str]]) -> set[UUID]:
    """The ids of the known orders among these (channel, external_id)."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT o.order_id FROM orders o JOIN unnest($1::text[], $2::text[]) AS k(channel, external_id)"
        " USING (channel, external_id)",
        [channel for channel, _ in wanted],
        [external_id for _, external_id in wanted],
    )
    return {r["order_id"] for r in rows}


async def lock_orders(conn: Conn, order_ids: Iterable[UUID]) -> None:
    """Lock these orders' rows until the transaction ends, in order id order."""
    if ids := sorted(set(order_ids)):
        await conn.execute("SELECT 1 FROM orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE", ids)


async def lock_external_ids(conn: Conn, keys: Iterable[tuple[str, str]]) -> None:
    """Lock these (channel, external_id) until the transaction ends, in one global order: an order and a cancel
    request for it, read at the same moment by two instances, are handled one after the other."""
    await lock_names(conn, "capture-order", (f"{channel}:{external_id}" for channel, external_id in keys))


@dataclass(frozen=True)
class HeldRequest:
    fingerprint: str
    lines: list[ItemQuantity] | None
    reason: str


async def hold_cancel_request(
    conn: Conn,
    channel: str,
    external_id: str,
    fingerprint: str,
    event_id: UUID,
    lines: list[ItemQuantity] | None,
    reason: str,
) -> bool:
    """Hold a request for an order not seen yet; False when the same request is held already (or was applied).
    A request made again after an earlier one expired is a new request: held again, from now."""
    return bool(
        await conn.fetchval(
            "INSERT INTO early_cancel_requests (channel, external_id, fingerprint, event_id, lines, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (channel, external_id, fingerprint) DO UPDATE SET event_id = excluded.event_id,"
            " lines = excluded.lines, reason = excluded.reason, state = 'held', outcome = NULL, resolved_at = NULL,"
            " held_since = excluded.held_since WHERE early_cancel_requests.state = 'expired' RETURNING true",
            channel,
            external_id,
            fingerprint,
            event_id,
            None if lines is None else [line.model_dump() for line in lines],
            reason,
        )
    )


async def held_cancel_requests(conn: Conn, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[HeldRequest]]:
    """The requests held for these (channel, external_id), oldest first, locked (an expiry running meanwhile
    waits, then skips them)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT channel, external_id, fingerprint, lines, reason FROM early_cancel_requests"
        " JOIN unnest($1::text[], $2::text[]) AS k(channel, external_id) USING (channel, external_id)"
        " WHERE state = 'held' ORDER BY held_since, event_id FOR UPDATE OF early_cancel_requests",
        [channel for channel, _ in wanted],
        [external_id for _, external_id in wanted],
    )
    held: dict[tuple[str, str], list[HeldRequest]] = {}
    for r in rows:
        lines = None if r["lines"] is None else [ItemQuantity(**line) for line in r["lines"]]
        held.setdefault((r["channel"], r["external_id"]), []).append(HeldRequest(r["fingerprint"], lines, r["reason"]))
    return held


async def apply_held_request(
    conn: Conn, channel: str, external_id: str, fingerprint: str, order_id: UUID, outcome: str
) -> None:
    await conn.execute(
        "UPDATE early_cancel_requests SET state = 'applied', order_id = $4, outcome = $5, resolved_at = now()"
        " WHERE channel = $1 AND external_id = $2 AND fingerprint = $3",
        channel,
        external_id,
        fingerprint,
        order_id,
        outcome,
    )


async def expire_held_requests(conn: Conn, held_before: datetime, outcome: str) -> list[tuple[str, str]]:
    """Answer the requests held since before `held_before` as expired; returns their (channel, external_id)."""
    rows = await conn.fetch(
        "UPDATE early_cancel_requests SET state = 'expired', outcome = $2, resolved_at = now()"
        " WHERE state = 'held' AND held_since < $1 RETURNING channel, external_id",
        held_before,
        outcome,
    )
    return [(r["channel"], r["external_id"]) for r in rows]


async def orders_of_webhooks(conn: Conn, webhook_ids: Sequence[str]) -> dict[str, tuple[UUID, str]]:
    """The order (its id and status) each of these deliveries made, for those recorded."""
    if not webhook_ids:
        return {}
    rows = await conn.fetch(
        "SELECT w.webhook_id, o.order_id, o.status FROM shopify_webhooks w JOIN orders o USING (order_id)"
        " WHERE w.webhook_id = ANY($1::text[])",
        list(webhook_ids),
    )
    return {r["webhook_id"]: (r["order_id"], r["status"]) for r in rows}


async def record_webhooks(conn: Conn, deliveries: Sequence[tuple[str, str, UUID]]) -> None:
    """(webhook id, shop domain, order id) of the deliveries orders came in."""
    await conn.execute(
        "INSERT INTO shopify_webhooks (webhook_id, shop_domain, order_id)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[]) ON CONFLICT DO NOTHING",
        *columns(deliveries, 3),
    )


async def order_view(conn: Conn, order_id: UUID) -> dict[str, Any] | None:
    order = await conn.fetchrow(
        "SELECT order_id, channel, external_id, status, reasons, received_at, placed_at, currency, total,"
        " ordered, backordered, cancelled, shipped, account, paid, version FROM orders WHERE order_id = $1",
        order_id,
    )
    if order is None:
        return None
    steps = await conn.fetch(
        "SELECT status, order_status, occurred_at, detail FROM order_timeline WHERE order_id = $1"
        " ORDER BY occurred_at, id",
        order_id,
    )
    cancellations = await conn.fetch(
        "SELECT lines, reason, source, state, outcome, requested_at, resolved_at FROM cancel_requests"
        " WHERE order_id = $1 ORDER BY requested_at",
        order_id,
    )
    return {
        **dict(order),
        "total": str(order["total"]),
        "paid": str(order["paid"]),
        "timeline": [dict(s) for s in steps],
        "cancellations": [dict(c) for c in cancellations],
        "risk": await risk_view(conn, order_id),
        "holds": await holds_view(conn, order_id),
        **await returns_view(conn, order_id),
        "changes": await change_repository.changes_view(conn, order_id),
    }


# ---- risk and holds ----


async def risk_history(conn: Conn, lookups: Iterable[risk.Lookup]) -> dict[risk.Lookup, risk.Seen]:
    """Per (dimension, key, since): the orders taken in since then with that key, and their amounts; one statement
    for the whole batch."""
    wanted = sorted(set(lookups))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT l.dimension, l.key, l.since, count(k.order_id)::int AS orders, coalesce(sum(k.amount), 0) AS amount"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS l(dimension, key, since)"
        " LEFT JOIN order_risk_keys k ON k.dimension = l.dimension AND k.key = l.key AND k.received_at >= l.since"
        " GROUP BY l.dimension, l.key, l.since",
        [w[0] for w in wanted],
        [w[1] for w in wanted],
        [w[2] for w in wanted],
    )
    return {(r["dimension"], r["key"], r["since"]): risk.Seen(r["orders"], r["amount"]) for r in rows}


@dataclass(frozen=True)
class Assessed:
    """A new order's risk: what it is counted by, and its assessment (None when it was not assessed)."""

    order_id: UUID
    keys: Mapping[risk.Dimension, str]
    amount: Decimal
    assessment: risk.Assessment | None


async def add_risk(conn: Conn, assessed: Sequence[Assessed], at: datetime) -> None:
    """The orders' velocity keys and their assessments, one statement each."""
    counted = [(a.order_id, dimension, key, a.amount) for a in assessed for dimension, key in a.keys.items()]
    if not counted:
        return
    await conn.execute(
        "INSERT INTO order_risk_keys (order_id, dimension, key, amount, received_at)"
        " SELECT order_id, dimension, key, amount, $5 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[])"
        " AS k(order_id, dimension, key, amount) ON CONFLICT DO NOTHING",
        [c[0] for c in counted],
        [c[1] for c in counted],
        [c[2] for c in counted],
        [c[3] for c in counted],
        at,
    )
    scored = [(a.order_id, a.assessment) for a in assessed if a.assessment is not None]
    if not scored:
        return
    await conn.execute(
        "INSERT INTO risk_assessments (order_id, score, level, recommendation, rules, assessed_at)"
        " SELECT order_id, score, level, recommendation, rules::jsonb, $6"
        " FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[])"
        " AS a(order_id, score, level, recommendation, rules) ON CONFLICT DO NOTHING",
        [order_id for order_id, _ in scored],
        [a.score for _, a in scored],
        [a.level for _, a in scored],
        [a.recommendation for _, a in scored],
        [json.dumps(a.document()) for _, a in scored],
        at,
    )


async def add_holds(conn: Conn, holds: Sequence[tuple[UUID, str, str, str]], at: datetime) -> None:
    """Holds (order, type, reason, placed by) placed at once."""
    if not holds:
        return
    await conn.execute(
        "INSERT INTO holds (order_id, hold_type, reason, placed_by, placed_at)"
        " SELECT order_id, hold_type, reason, placed_by, $5"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS h(order_id, hold_type, reason, placed_by)",
        [h[0] for h in holds],
        [h[1] for h in holds],
        [h[2] for h in holds],
        [h[3] for h in holds],
        at,
    )


async def held(conn: Conn, order_id: UUID) -> list[ev.HoldType]:
    """The types of the holds still on the order (its row locked by the caller)."""
    rows = await conn.fetch(
        "SELECT hold_type FROM holds WHERE order_id = $1 AND state = 'held' ORDER BY hold_type", order_id
    )
    return [r["hold_type"] for r in rows]


async def end_holds(
    conn: Conn, order_id: UUID, hold_types: Sequence[str], state: str, by: str, note: str | None, at: datetime
) -> None:
    """Release these holds of the order, or end them as its cancellation does ('cancelled', 'expired')."""
    await conn.execute(
        "UPDATE holds SET state = $3, released_by = $4, note = $5, released_at = $6"
        " WHERE order_id = $1 AND hold_type = ANY($2::text[]) AND state = 'held'",
        order_id,
        list(hold_types),
        state,
        by,
        note,
        at,
    )


async def overdue_holds(
    conn: Conn, placed_before: Mapping[ev.HoldType, datetime], limit: int
) -> dict[UUID, list[ev.HoldType]]:
    """Orders on hold with a hold placed before its type's moment, and those holds. The orders are locked first, in
    order id order, skipping any another transaction holds (it is releasing or cancelling it: the next sweep looks
    again); their holds are read after, so a hold released meanwhile is not counted."""
    overdue = (
        "SELECT h.order_id, array_agg(h.hold_type ORDER BY h.hold_type) AS overdue FROM holds h"
        " JOIN unnest($1::text[], $2::timestamptz[]) AS l(hold_type, placed_before) USING (hold_type)"
        " WHERE h.state = 'held' AND h.placed_at < l.placed_before"
    )
    types, moments = list(placed_before), list(placed_before.values())
    candidates = await conn.fetch(f"{overdue} GROUP BY h.order_id ORDER BY h.order_id LIMIT $3", types, moments, limit)
    if not candidates:
        return {}
    locked = await conn.fetch(
        "SELECT order_id FROM orders WHERE order_id = ANY($1::uuid[]) AND status = 'on_hold'"
        " ORDER BY order_id FOR UPDATE SKIP LOCKED",
        [r["order_id"] for r in candidates],
    )
    rows = await conn.fetch(
        f"{overdue} AND h.order_id = ANY($3::uuid[]) GROUP BY h.order_id",
        types,
        moments,
        [r["order_id"] for r in locked],
    )
    return {r["order_id"]: list(r["overdue"]) for r in rows}


async def order_facts(conn: Conn, order_id: UUID) -> tuple[SubmittedOrder, datetime]:
    """The order as submitted and when it was received: what its OrderValidated announces."""
    row = await conn.fetchrow("SELECT document, received_at FROM orders WHERE order_id = $1", order_id)
    assert row is not None, "the caller locked this order"
    return SubmittedOrder.model_validate(row["document"]), row["received_at"]


HOLD_COLUMNS = "hold_type, reason, placed_by, placed_at, state, released_by, released_at, note"


async def holds_view(conn: Conn, order_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE order_id = $1 ORDER BY placed_at, hold_type", order_id
    )
    return [dict(r) for r in rows]


async def orders_on_hold(conn: Conn, hold_type: str | None, limit: int) -> list[dict[str, Any]]:
    """Orders on hold, the oldest hold first, with their holds and risk assessment (no personal data)."""
    rows = await conn.fetch(
        "SELECT o.order_id, o.channel, o.external_id, o.received_at, o.currency, o.total::text AS total,"
        " a.score, a.level, a.recommendation,"
        " (SELECT jsonb_agg(jsonb_build_object('hold_type', h.hold_type, 'reason', h.reason, 'placed_by', h.placed_by,"
        "   'placed_at', h.placed_at) ORDER BY h.hold_type) FROM holds h WHERE h.order_id = o.order_id"
        "   AND h.state = 'held') AS holds,"
        " (SELECT min(h.placed_at) FROM holds h WHERE h.order_id = o.order_id AND h.state = 'held') AS held_since"
        " FROM orders o LEFT JOIN risk_assessments a USING (order_id)"
        " WHERE o.status = 'on_hold'"
        " AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM holds h WHERE h.order_id = o.order_id AND h.state = 'held'"
        "   AND h.hold_type = $1))"
        " ORDER BY held_since, o.order_id LIMIT $2",
        hold_type,
        limit,
    )
    return [dict(r) for r in rows]


async def risk_view(conn: Conn, order_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT score, level, recommendation, rules, assessed_at FROM risk_assessments WHERE order_id = $1", order_id
    )
    return None if row is None else dict(row)


# ---- returns (after delivery) ----


async def order_document(conn: Conn, order_id: UUID) -> SubmittedOrder | None:
    document = await conn.fetchval("SELECT document FROM orders WHERE order_id = $1", order_id)
    return None if document is None else SubmittedOrder.model_validate(document)


async def add_return_steps(conn: Conn, order_id: UUID, steps: Sequence[tuple[str, str]], at: datetime) -> None:
    """Timeline steps of the order's returns; the order keeps its status."""
    await conn.executemany(
        "INSERT INTO order_timeline (order_id, status, occurred_at, detail, order_status)"
        " SELECT $1, $2, $3, $4, status FROM orders WHERE order_id = $1",
        [(order_id, name, at, detail) for name, detail in steps],
    )


async def record_return(
    conn: Conn,
    order_id: UUID,
    return_id: UUID,
    state: str | None,
    asked: Mapping[str, int] | None,
    authorised: bool,
    received: Mapping[str, int] | None,
    at: datetime,
    keeps: Sequence[str] = (),
) -> None:
    """The return's units and state; `keeps`: states the new one does not replace."""
    if asked is not None:
        await conn.executemany(
            "INSERT INTO return_lines (return_id, sku, order_id, asked, authorised, state, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (return_id, sku) DO UPDATE SET authorised = excluded.authorised, state = excluded.state,"
            " updated_at = excluded.updated_at",
            [(return_id, sku, order_id, n, n if authorised else 0, state, at) for sku, n in asked.items()],
        )
    elif state is not None:
        await conn.execute(
            "UPDATE return_lines SET state = $2, updated_at = $3 WHERE return_id = $1 AND state <> ALL($4)",
            return_id,
            state,
            at,
            list(keeps),
        )
    if received:
        await conn.executemany(
            "UPDATE return_lines SET received = received + $3 WHERE return_id = $1 AND sku = $2",
            [(return_id, sku, n) for sku, n in received.items()],
        )


async def record_refund(conn: Conn, refunded: ev.ReturnRefunded | ev.ChangeRefunded, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO refunds (refund_id, order_id, amount, currency, refunded_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING",
        refunded.refund_id,
        refunded.order_id,
        refunded.amount,
        refunded.currency,
        at,
    )


async def returns_view(conn: Conn, order_id: UUID) -> dict[str, Any]:
    """Per SKU the units asked back (by returns not rejected), authorised and received; the refunded total; the
    state of the return that moved last."""
    returned: dict[str, dict[str, int]] = {}
    for row in await conn.fetch(
        "SELECT sku, sum(asked)::int AS asked, sum(authorised)::int AS authorised, sum(received)::int AS received"
        " FROM return_lines WHERE order_id = $1 AND state <> 'rejected' GROUP BY sku ORDER BY sku",
        order_id,
    ):
        returned[row["sku"]] = {"asked": row["asked"], "authorised": row["authorised"], "received": row["received"]}
    refunded = await conn.fetchval("SELECT sum(amount) FROM refunds WHERE order_id = $1", order_id)
    original = await conn.fetchval("SELECT document->>'original_order_id' FROM orders WHERE order_id = $1", order_id)
    status = await conn.fetchval(
        "SELECT state FROM return_lines WHERE order_id = $1 ORDER BY updated_at DESC, return_id LIMIT 1", order_id
    )
    return {
        "return_status": status,
        "returned": returned,
        "refunded": None if refunded is None else f"{refunded:.2f}",
        "original_order_id": original,
    }


# ---- credit of business accounts ----


async def lock_accounts(conn: Conn, accounts: Iterable[str]) -> None:
    """Lock these accounts' credit until the transaction ends, in one global order (after any order's row: a
    payment, a cancellation and an intake on one account are weighed one after the other)."""
    await lock_names(conn, "capture-account", accounts)


def _open_order(row: Any) -> credit.OpenOrder:
    return credit.OpenOrder(
        row["order_id"], SubmittedOrder.model_validate(row["document"]), row["cancelled"], row["paid"]
    )


CREDIT_HELD = (
    "EXISTS (SELECT 1 FROM holds h WHERE h.order_id = o.order_id AND h.hold_type = 'credit' AND h.state = 'held')"
)


async def exposures(conn: Conn, accounts: Iterable[str]) -> dict[str, list[credit.OpenOrder]]:
    """Per account, the orders its exposure is made of: open or shipped, not fully paid, not on a credit hold."""
    rows = await conn.fetch(
        "SELECT o.account, o.order_id, o.document, o.cancelled, o.paid FROM orders o"
        " WHERE o.account = ANY($1::text[]) AND o.status NOT IN ('rejected', 'cancelled') AND o.paid < o.total"
        f" AND NOT {CREDIT_HELD}",
        sorted(set(accounts)),
    )
    found: dict[str, list[credit.OpenOrder]] = {}
    for row in rows:
        found.setdefault(row["account"], []).append(_open_order(row))
    return found


async def lock_credit_held(conn: Conn, account: str) -> list[credit.OpenOrder]:
    """The account's orders on credit hold, oldest first, locked; one another transaction holds is skipped (it is
    being released or cancelled there, and that transaction looks at the account's credit itself)."""
    rows = await conn.fetch(
        "SELECT o.order_id, o.document, o.cancelled, o.paid FROM orders o"
        f" WHERE o.account = $1 AND o.status = 'on_hold' AND {CREDIT_HELD}"
        " ORDER BY o.received_at, o.order_id FOR UPDATE SKIP LOCKED",
        account,
    )
    return [_open_order(row) for row in rows]


async def accounts_on_credit_hold(conn: Conn) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT o.account FROM holds h JOIN orders o USING (order_id)"
        " WHERE h.state = 'held' AND h.hold_type = 'credit' AND o.account IS NOT NULL"
    )
    return {r["account"] for r in rows}


async def accounts_of(conn: Conn, order_ids: Iterable[UUID]) -> set[str]:
    """The accounts these orders are bought on."""
    rows = await conn.fetch(
        "SELECT DISTINCT account FROM orders WHERE order_id = ANY($1::uuid[]) AND account IS NOT NULL",
        list(set(order_ids)),
    )
    return {r["account"] for r in rows}


async def record_payment(conn: Conn, payment: ev.PaymentReceived, order_id: UUID) -> bool:
    """Count a payment towards its order's paid amount; False when this payment id was counted before."""
    counted = await conn.fetchval(
        "WITH p AS (INSERT INTO payments (payment_id, order_id, amount, currency, received_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING RETURNING order_id, amount)"
        " UPDATE orders o SET paid = o.paid + p.amount FROM p WHERE o.order_id = p.order_id RETURNING true",
        payment.payment_id,
        order_id,
        payment.amount,
        payment.currency,
        payment.received_at,
    )
    return bool(counted)
