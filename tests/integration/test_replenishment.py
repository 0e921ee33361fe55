"""Replenishment on the real stack: orders taking a SKU's stock below its reorder rule's minimum raise one draft
purchase order for purchasing (read as purchasing, on its topic), not one per order; a receipt naming it closes it;
and once closed, the next fall below the minimum raises a new one.

The local stack's allocation file has a rule for `REPL-*` SKUs in Amsterdam: minimum 10, maximum 30, packs of 6,
supplier nordic-supply, 5 days' lead time."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from typing import Any

import asyncpg
import httpx

from shared.contracts import topics
from tests.factories import order_document
from tests.integration.allocation_steps import allocation_order, stock
from tests.local import client
from tests.scenario import TopicReader, seed
from tests.waiting import eventually

SUGGESTIONS = topics.REPLENISHMENT_SUGGESTIONS.name


async def place(http: httpx.AsyncClient, db: asyncpg.Pool, sku: str, *quantities: int) -> None:
    """Orders from the Netherlands (Amsterdam serves them), sent at once, each until allocation reserved it."""
    answers = await asyncio.gather(
        *(http.post("/v1/orders", json=order_document([(sku, q)], country="NL")) for q in quantities)
    )
    for answer in answers:
        await allocation_order(db, answer.json()["order_id"], {"allocated"})


async def suggestions(db: asyncpg.Pool, sku: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM allocation.replenishment_suggestions WHERE sku = $1 ORDER BY opened_at", sku)


async def drafts(reader: TopicReader, sku: str) -> list[dict[str, Any]]:
    """The suggestions purchasing read for the SKU, as published (payloads of their envelopes)."""
    return [json.loads(r.value)["payload"] for r in await reader.read() if r.key == f"ams:{sku}".encode()]


async def test_stock_falling_below_the_minimum_raises_one_suggestion_a_receipt_closes_it_and_a_new_one_follows(
    http, db
) -> None:
    # given 12 units of a SKU with a reorder rule in Amsterdam (minimum 10), and purchasing reading its topic
    sku = f"REPL-{uuid.uuid4().hex[:10]}"
    await seed([("ams", sku, 12)])
    async with TopicReader(SUGGESTIONS, principal="purchasing") as purchasing:
        # when four orders of 2 units arrive at once: the forecast falls to 8, 6 and 4, below the minimum thrice
        await place(http, db, sku, 2, 2, 2, 2)

        # then one suggestion is open, not one per order, and purchasing reads it
        (opened,) = await suggestions(db, sku)
        (draft,) = await eventually(lambda: drafts(purchasing, sku), lambda found: len(found) >= 1, timeout=30)
        assert draft["suggestion_id"] == str(opened["suggestion_id"]) and opened["status"] == "open"
        forecast = draft["forecast"]
        assert forecast in (8, 6, 4)  # as the orders' batches fell
        assert draft["quantity"] == 6 * math.ceil((30 - forecast) / 6)
        assert (draft["warehouse_id"], draft["supplier"], draft["minimum"], draft["maximum"]) == (
            "ams",
            "nordic-supply",
            10,
            30,
        )

        # when the supplier's delivery is received under a reference naming the suggestion
        reference = f"{draft['suggestion_id']}/1"
        await client.publish_receipts([("ams", sku, draft["quantity"])], reference=reference)
        await client.wait_caught_up("oms-allocation", [topics.INVENTORY_ADJUSTMENTS.name])

        # then it is closed by that receipt, and nothing new opens: the forecast is back above the minimum
        (closed,) = await suggestions(db, sku)
        assert (closed["status"], closed["received_by"]) == ("received", reference)
        on_hand, reserved = await stock(db, "ams", sku)
        assert on_hand - reserved == 4 + draft["quantity"]

        # when later orders take the forecast below the minimum again
        await place(http, db, sku, on_hand - reserved - 5)

        # then a new suggestion opens beside the closed one, and purchasing reads it too
        first, second = await eventually(lambda: suggestions(db, sku), lambda found: len(found) == 2)
        assert (first["status"], second["status"]) == ("received", "open")
        assert (second["forecast"], second["quantity"]) == (5, 30)
        published = await eventually(lambda: drafts(purchasing, sku), lambda found: len(found) == 2, timeout=30)
        assert [d["suggestion_id"] for d in published] == [str(first["suggestion_id"]), str(second["suggestion_id"])]
