"""The idempotent consumer: event ids are claimed in the same transaction as the effects they cause, and
kept for a retention window longer than any record can come again (README: "How an order cannot get lost")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.backbone.failures import describe
from shared.backbone.metrics import INBOX_PRUNED
from shared.backbone.settings import CommonSettings

log = logging.getLogger(__name__)


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


async def prune(pool: asyncpg.Pool, older_than: timedelta, batch: int) -> int:
    """Remove ids processed longer ago than `older_than`, a batch per short transaction (so consumers are
    never held up behind a long delete); rows another instance is removing are skipped. Returns how many."""
    removed = 0
    while True:
        done: int = await pool.fetchval(
            "WITH gone AS (DELETE FROM processed_events WHERE event_id IN ("
            " SELECT event_id FROM processed_events WHERE processed_at < now() - $1::interval"
            " LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1)"
            " SELECT count(*) FROM gone",
            older_than,
            batch,
        )
        removed += done
        if done < batch:
            return removed


async def keep_retention(settings: CommonSettings, pool: asyncpg.Pool) -> None:
    """The background loop: prune at start, then every `inbox_prune_seconds`; a failure waits for the next turn."""
    older_than = timedelta(hours=settings.inbox_retention_hours)
    while True:
        try:
            removed = await prune(pool, older_than, settings.inbox_prune_batch)
            INBOX_PRUNED.labels(settings.service).inc(removed)
            if removed:
                log.info("pruned %d processed event ids older than %s", removed, older_than)
        except Exception as exc:
            log.warning("inbox pruning failed (%s); next try in %.0fs", describe(exc), settings.inbox_prune_seconds)
        await asyncio.sleep(settings.inbox_prune_seconds)
