"""Capture's SQL for order changes: the changes asked of an order and their state, the order's version, and the
order's document, lines and total once a change is accepted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.backbone.db import Conn
from shared.contracts.backorders import quantities
from shared.contracts.events import SubmittedOrder

from .changes import Plan

COLUMNS = (
    "change_id, fingerprint, version, state, verdict, source, reason, notes, before, after, lines, reduced, reroute,"
    " total_before, total_after, paid_before, to_pay, due_back, outcome, requested_at, resolved_at, refund_state,"
    " refunded, refund_note"
)


@dataclass(frozen=True)
class Standing:
    """What a change is weighed against besides the progress: the order's version and what was paid for it."""

    version: int
    paid: Decimal


async def standing(conn: Conn, order_id: UUID) -> Standing:
    row = await conn.fetchrow("SELECT version, paid FROM orders WHERE order_id = $1", order_id)
    assert row is not None, "the caller locked this order"
    return Standing(row["version"], row["paid"])


async def find(conn: Conn, order_id: UUID, change_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM order_changes WHERE order_id = $1 AND change_id = $2", order_id, change_id
    )
    return None if row is None else dict(row)


async def under_way(conn: Conn, order_id: UUID) -> dict[str, Any] | None:
    """The order's change awaiting payment or fulfillment's answer, if there is one."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM order_changes WHERE order_id = $1 AND state IN ('awaiting_payment', 'requested')",
        order_id,
    )
    return None if row is None else dict(row)


async def add(
    conn: Conn,
    order_id: UUID,
    change_id: str,
    fingerprint: str,
    version: int,
    state: str,
    source: str,
    reason: str,
    before: SubmittedOrder,
    plan: Plan,
    paid: Decimal,
    at: datetime,
) -> None:
    assert plan.after is not None
    await conn.execute(
        "INSERT INTO order_changes (order_id, change_id, fingerprint, version, state, verdict, source, reason, notes,"
        " before, after, lines, reduced, reroute, total_before, total_after, paid_before, to_pay, due_back,"
        " requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,"
        " $20)",
        order_id,
        change_id,
        fingerprint,
        version,
        state,
        plan.verdict,
        source,
        reason,
        list(plan.reasons),
        json.loads(before.model_dump_json()),
        json.loads(plan.after.model_dump_json()),
        dict(plan.lines),
        dict(plan.reduced),
        plan.reroute,
        plan.total_before,
        plan.total_after,
        paid,
        plan.to_pay,
        plan.due_back,
        at,
    )


async def set_state(conn: Conn, order_id: UUID, change_id: str, state: str, outcome: str | None) -> None:
    await conn.execute(
        "UPDATE order_changes SET state = $3, outcome = coalesce($4, outcome),"
        " resolved_at = CASE WHEN $3 IN ('refused', 'applied') THEN now() ELSE resolved_at END"
        " WHERE order_id = $1 AND change_id = $2",
        order_id,
        change_id,
        state,
        outcome,
    )


async def apply(conn: Conn, order_id: UUID, version: int, after: SubmittedOrder, total: Decimal) -> None:
    """The order as the change leaves it: its document, lines ordered, total and version."""
    await conn.execute(
        "UPDATE orders SET document = $2, ordered = $3, total = $4, version = $5, updated_at = now()"
        " WHERE order_id = $1",
        order_id,
        json.loads(after.model_dump_json()),
        quantities(after.lines),
        total,
        version,
    )


async def settle(conn: Conn, order_id: UUID, change_id: str, after: SubmittedOrder, total: Decimal) -> None:
    """The change as applied, less what allocation refused: its order after it and total, and what is due back
    (what was paid before beyond the new total, and what was paid for the change for units it no longer adds)."""
    await conn.execute(
        "UPDATE order_changes SET after = $3, total_after = $4,"
        # (every expression reads the row as it was: total_after is the total the change was priced at)
        " due_back = greatest(0, least(paid_before, total_before) - $4) + least(to_pay, greatest(0, total_after - $4))"
        " WHERE order_id = $1 AND change_id = $2",
        order_id,
        change_id,
        json.loads(after.model_dump_json()),
        total,
    )


async def record_refund(conn: Conn, order_id: UUID, change_id: str, state: str, amount: Decimal, note: str) -> bool:
    """The outcome of the refund of what the change made due back; False when one was recorded before."""
    updated = await conn.fetchval(
        "UPDATE order_changes SET refund_state = $3, refunded = $4, refund_note = $5"
        " WHERE order_id = $1 AND change_id = $2 AND refund_state IS NULL RETURNING true",
        order_id,
        change_id,
        state,
        amount if state == "refunded" else Decimal(0),
        note,
    )
    return bool(updated)


# What a change can change, shown before and after it; the rest of the order's document (the customer, the payer, the
# payment reference) is not repeated in the view.
SHOWN = ("shipping_address", "service_level", "lines", "shipping_price", "currency")


async def changes_view(conn: Conn, order_id: UUID) -> list[dict[str, Any]]:
    """The order's changes, oldest first, with what they changed before and after (the ship-to is the order's own:
    served to its channel and operators only, never logged)."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM order_changes WHERE order_id = $1 ORDER BY requested_at", order_id)
    money = ("total_before", "total_after", "paid_before", "to_pay", "due_back")
    return [
        {
            **dict(r),
            **{k: str(r[k]) for k in money},
            "refunded": None if r["refunded"] is None else str(r["refunded"]),
            **{side: {k: r[side].get(k) for k in SHOWN} for side in ("before", "after")},
        }
        for r in rows
    ]
