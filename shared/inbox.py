"""The idempotent consumer: event ids are claimed in the same transaction as the effects they cause."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from shared.db import Conn


async def claim(conn: Conn, event_ids: Iterable[UUID]) -> set[UUID]:
    """Record the ids as processed and return those seen for the first time.

    Must run inside the transaction that applies the events' effects: if it rolls back, so does the claim.
    """
    rows = await conn.fetch(
        "INSERT INTO processed_events (event_id) SELECT unnest($1::uuid[]) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        sorted(set(event_ids)),  # one global order, so two instances claiming redelivered ids cannot deadlock
    )
    return {r["event_id"] for r in rows}
