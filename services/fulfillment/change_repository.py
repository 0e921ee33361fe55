"""Fulfillment's SQL for order changes: the decisions, and the latest version of each order a change was accepted
for (a shipment of an older version that arrives later is born withdrawn)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts.events import OrderChangeRequested


async def latest(conn: Conn, order_ids: Iterable[UUID]) -> dict[UUID, asyncpg.Record]:
    """Per order: its latest accepted change (version, change id, ship-to, service level, lines, reason)."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (order_id) order_id, change_id, order_version, ship_to, service_level, lines, reason"
        " FROM order_changes WHERE order_id = ANY($1::uuid[]) AND outcome = 'accepted'"
        " ORDER BY order_id, order_version DESC",
        list(set(order_ids)),
    )
    return {r["order_id"]: r for r in rows}


async def record(
    conn: Conn,
    event_id: UUID,
    request: OrderChangeRequested,
    refusal: str | None,
    withdrawn: Sequence[UUID],
    decided_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO order_changes (event_id, order_id, change_id, order_version, ship_to, service_level, lines,"
        " reason, outcome, refusal, withdrawn_shipments, decided_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        event_id,
        request.order_id,
        request.change_id,
        request.order_version,
        request.ship_to.model_dump(mode="json"),
        request.service_level,
        [line.model_dump() for line in request.lines],
        request.reason,
        "accepted" if refusal is None else "refused",
        refusal,
        list(withdrawn),
        decided_at,
    )


async def stamp_version(conn: Conn, versions: dict[UUID, int]) -> None:
    """The order version each released pick task was allocated under."""
    if versions:
        await conn.execute(
            "UPDATE pick_tasks p SET order_version = v.version FROM unnest($1::uuid[], $2::int[]) AS v(id, version)"
            " WHERE p.pick_task_id = v.id",
            list(versions),
            list(versions.values()),
        )
