"""Allocation's handlers over whole batches, against the real PostgreSQL schema, in one transaction per test that
is rolled back (as the consumer hands them a batch: its records in steps, in the order read). A batch is
locked, loaded and saved in a fixed number of statements whatever its size, and its records take effect in
the order they were read."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from services.allocation.handlers import AllocationHandlers
from services.allocation.settings import AllocationSettings, load_network, load_priorities, load_replenishment
from shared.backbone.consumer import steps
from shared.backbone.db import connect
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import validated_order
from tests.scenario import new_skus

QUERIES = ("execute", "executemany", "fetch", "fetchrow", "fetchval")


class Counted:
    """A connection that notes every statement sent through it (savepoints are not counted)."""

    def __init__(self, conn: asyncpg.Connection, seen: list[str]) -> None:
        self._conn = conn
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._conn, name)
        if name not in QUERIES:
            return attribute

        async def counted(query: str, *args: Any, **kwargs: Any) -> Any:
            self._seen.append(query)
            return await attribute(query, *args, **kwargs)

        return counted


@dataclass
class Allocation:
    conn: asyncpg.Connection
    handlers: AllocationHandlers
    outbox_from: int
    statements: list[str] = field(default_factory=list)

    async def batch(self, *records: tuple[topics.Topic, ev.Contract]) -> int:
        """Hand the records to the handlers as the consumer does one batch; returns the statements it took."""
        inbound = [
            Inbound(
                Origin(topic.name, 0, offset, None, None, ()),
                wrap(payload, producer=topic.writer, order_id=getattr(payload, "order_id", None)),
                payload,
            )
            for offset, (topic, payload) in enumerate(records)
        ]
        before = len(self.statements)
        conn = Counted(self.conn, self.statements)
        for step in steps(inbound, self.handlers.routes()):
            for handler, taken in step:
                await handler(conn, taken)  # type: ignore[arg-type]
        return len(self.statements) - before

    async def published(self, event_type: str, *order_ids: uuid.UUID) -> list[dict[str, Any]]:
        """This test's events of the type, in the order written (the running service writes to the outbox too)."""
        rows = await self.conn.fetch("SELECT body FROM outbox WHERE id > $1 ORDER BY id", self.outbox_from)
        bodies = [json.loads(r["body"]) for r in rows]
        ids = {str(order_id) for order_id in order_ids}
        return [b["payload"] for b in bodies if b["type"] == event_type and b["payload"]["order_id"] in ids]

    async def suggested(self, sku: str) -> list[dict[str, Any]]:
        """This test's replenishment suggestions for the SKU, in the order written."""
        rows = await self.conn.fetch("SELECT body FROM outbox WHERE id > $1 ORDER BY id", self.outbox_from)
        bodies = [json.loads(r["body"]) for r in rows]
        return [b["payload"] for b in bodies if b["type"] == "ReplenishmentSuggested" and b["payload"]["sku"] == sku]

    async def suggestion_status(self, suggestion_id: str) -> tuple[str, str | None]:
        row = await self.conn.fetchrow(
            "SELECT status, received_by FROM replenishment_suggestions WHERE suggestion_id = $1",
            uuid.UUID(suggestion_id),
        )
        assert row is not None, suggestion_id
        return row["status"], row["received_by"]

    async def status(self, order_id: uuid.UUID) -> str | None:
        return await self.conn.fetchval("SELECT status FROM orders WHERE order_id = $1", order_id)  # type: ignore[no-any-return]

    async def reserved(self, warehouse: str, sku: str) -> int:
        return int(
            await self.conn.fetchval("SELECT reserved FROM stock WHERE warehouse_id = $1 AND sku = $2", warehouse, sku)
        )


@pytest.fixture
async def allocation(stack: None) -> AsyncIterator[Allocation]:
    settings = AllocationSettings()
    conn = await connect(settings)
    transaction = conn.transaction()
    await transaction.start()
    try:
        network = load_network(settings.warehouses_file, settings.allocation_file)
        handlers = AllocationHandlers(
            network,
            load_replenishment(settings.allocation_file, network.warehouse_ids),
            load_priorities(settings.allocation_file, settings.carriers_file),
        )
        yield Allocation(conn, handlers, await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))
    finally:
        await transaction.rollback()
        await conn.close()


def receipt(
    sku: str, quantity: int, warehouse: str = "ams", reference: str | None = None
) -> tuple[topics.Topic, ev.Contract]:
    adjustment = ev.InventoryAdjusted(
        warehouse_id=warehouse, sku=sku, kind="receipt", quantity=quantity, reference=reference or f"r-{uuid.uuid4()}"
    )
    return topics.INVENTORY_ADJUSTMENTS, adjustment


def order(order_id: uuid.UUID, sku: str, quantity: int = 1) -> tuple[topics.Topic, ev.Contract]:
    return topics.ORDERS_VALIDATED, validated_order(order_id, sku, quantity)


def cancellation(order_id: uuid.UUID) -> tuple[topics.Topic, ev.Contract]:
    accepted = ev.CancellationAccepted(order_id=order_id, withdrawn_shipments=[], reason="changed my mind")
    return topics.FULFILLMENT_EVENTS, accepted


async def test_a_batch_of_twenty_orders_takes_as_many_statements_as_a_batch_of_one(allocation: Allocation) -> None:
    # given plenty of stock of a new SKU
    (sku,) = new_skus(1)
    await allocation.batch(receipt(sku, 100))
    # when one batch brings one order, and the next twenty
    one = await allocation.batch(order(uuid.uuid4(), sku))
    twenty_ids = [uuid.uuid4() for _ in range(20)]
    twenty = await allocation.batch(*(order(order_id, sku) for order_id in twenty_ids))
    # then the twenty took no more statements than the one, and every order holds its unit
    assert twenty == one, allocation.statements[-twenty:]
    assert [await allocation.status(order_id) for order_id in twenty_ids] == ["allocated"] * 20
    assert await allocation.reserved("ams", sku) == 21
    assert len(await allocation.published("OrderAllocated", *twenty_ids)) == 20


async def test_the_records_of_one_batch_take_effect_in_the_order_read(allocation: Allocation) -> None:
    # given a SKU nobody holds
    (sku,) = new_skus(1)
    first, second = uuid.uuid4(), uuid.uuid4()
    # when one batch brings an order for 2, a receipt of 3, then a later order for 2
    await allocation.batch(order(first, sku, 2), receipt(sku, 3), order(second, sku, 2))
    # then the first waited until the receipt and was served from it first; the second got what was left
    assert await allocation.status(first) == "allocated"
    assert await allocation.status(second) == "backordered"
    assert await allocation.reserved("ams", sku) == 3
    backordered = await allocation.published("OrderBackordered", first, second)
    allocated = await allocation.published("OrderAllocated", first, second)
    assert [b["order_id"] for b in backordered] == [str(first)]
    assert [(a["order_id"], a["backordered"]) for a in allocated] == [
        (str(first), []),
        (str(second), [{"sku": sku, "quantity": 1}]),
    ]


async def test_a_cancellation_read_before_its_order_in_the_same_batch_cancels_it(allocation: Allocation) -> None:
    # given stock, and a cancellation that overtook its order, both in one batch
    (sku,) = new_skus(1)
    order_id = uuid.uuid4()
    await allocation.batch(receipt(sku, 5), cancellation(order_id), order(order_id, sku, 2))
    # then the order is cancelled before anything is reserved, and the early cancellation is used up
    assert await allocation.status(order_id) == "cancelled"
    assert await allocation.reserved("ams", sku) == 0
    assert [c["order_id"] for c in await allocation.published("OrderCancelled", order_id)] == [str(order_id)]
    assert not await allocation.conn.fetchval("SELECT true FROM early_cancellations WHERE order_id = $1", order_id)


async def test_a_cancellation_of_an_order_not_seen_yet_waits_for_it_across_batches(allocation: Allocation) -> None:
    # given a cancellation for an order allocation has not seen, alone in its batch
    (sku,) = new_skus(1)
    order_id = uuid.uuid4()
    await allocation.batch(receipt(sku, 5), cancellation(order_id))
    # when the order arrives in a later batch
    await allocation.batch(order(order_id, sku, 2))
    # then it is cancelled and holds nothing
    assert await allocation.status(order_id) == "cancelled"
    assert await allocation.reserved("ams", sku) == 0


async def test_an_order_read_again_in_a_later_batch_changes_nothing(allocation: Allocation) -> None:
    # given an order allocated
    (sku,) = new_skus(1)
    order_id = uuid.uuid4()
    await allocation.batch(receipt(sku, 5), order(order_id, sku, 2))
    # when it comes again (a new event id: capture announced it twice)
    await allocation.batch(order(order_id, sku, 2))
    # then nothing more is reserved or announced
    assert await allocation.reserved("ams", sku) == 2
    assert len(await allocation.published("OrderAllocated", order_id)) == 1


# The local stack's allocation file has a reorder rule for REPL-* SKUs in Amsterdam: minimum 10, maximum 30, packs of 6.


def replenished_sku() -> str:
    return f"REPL-{uuid.uuid4().hex[:10]}"


async def test_orders_of_one_batch_each_falling_below_the_minimum_raise_one_suggestion(allocation: Allocation) -> None:
    # given 12 units of a SKU with a reorder rule
    sku = replenished_sku()
    await allocation.batch(receipt(sku, 12))
    # when one batch brings four orders of 2 units: the stock falls to 10, 8, 6, 4
    await allocation.batch(*(order(uuid.uuid4(), sku, 2) for _ in range(4)))
    # then one suggestion, from the stock the batch left: 26 units to the maximum, 5 packs of 6
    assert [(s["forecast"], s["quantity"], s["warehouse_id"]) for s in await allocation.suggested(sku)] == [
        (4, 30, "ams")
    ]
    # and a later batch falling further raises none while it is open
    await allocation.batch(order(uuid.uuid4(), sku, 2))
    assert len(await allocation.suggested(sku)) == 1


async def test_a_receipt_naming_the_suggestion_closes_it_before_the_batch_reviews_the_stock(
    allocation: Allocation,
) -> None:
    # given a suggestion opened by a receipt of only 5 units
    sku = replenished_sku()
    await allocation.batch(receipt(sku, 5))
    (first,) = await allocation.suggested(sku)
    # when one batch brings a delivery of 6 under a reference naming it, then an order for 3
    reference = f"{first['suggestion_id']}/1"
    await allocation.batch(receipt(sku, 6, reference=reference), order(uuid.uuid4(), sku, 3))
    # then the first is received, and the forecast of 8 the batch left opens a new one
    assert await allocation.suggestion_status(first["suggestion_id"]) == ("received", reference)
    (_, second) = await allocation.suggested(sku)
    assert (second["forecast"], second["quantity"]) == (8, 24)
    assert await allocation.suggestion_status(second["suggestion_id"]) == ("open", None)


async def test_a_receipt_naming_a_suggestion_for_another_sku_closes_nothing(allocation: Allocation) -> None:
    # given a suggestion open for one SKU
    sku, other = replenished_sku(), replenished_sku()
    await allocation.batch(receipt(sku, 5), receipt(other, 20))
    (draft,) = await allocation.suggested(sku)
    # when a receipt of another SKU names it
    await allocation.batch(receipt(other, 1, reference=draft["suggestion_id"]))
    # then it stays open
    assert await allocation.suggestion_status(draft["suggestion_id"]) == ("open", None)


async def test_the_database_refuses_a_second_open_suggestion_for_a_warehouse_and_sku(allocation: Allocation) -> None:
    # given an open suggestion
    sku = replenished_sku()
    await allocation.batch(receipt(sku, 5))
    # when another is written for the same warehouse and SKU, whatever the code says
    with pytest.raises(asyncpg.UniqueViolationError, match="replenishment_one_open"):
        async with allocation.conn.transaction():
            await allocation.conn.execute(
                "INSERT INTO replenishment_suggestions (suggestion_id, warehouse_id, sku, supplier, quantity, forecast,"
                " on_hand, reserved, on_order, minimum, maximum, pack_multiple, lead_time_days, expected_by)"
                " VALUES ($1, 'ams', $2, 's', 6, 0, 0, 0, 0, 10, 30, 6, 5, current_date)",
                uuid.uuid4(),
                sku,
            )


async def test_units_routed_are_recorded_as_demand_of_the_day(allocation: Allocation) -> None:
    # given stock of a new SKU
    (sku,) = new_skus(1)
    await allocation.batch(receipt(sku, 10))
    # when two batches reserve 3 and 4 units
    await allocation.batch(order(uuid.uuid4(), sku, 3))
    await allocation.batch(order(uuid.uuid4(), sku, 4))
    # then today's demand in Amsterdam is 7 units
    rows = await allocation.conn.fetch(
        "SELECT warehouse_id, day = (now() AT TIME ZONE 'UTC')::date AS today, units FROM demand WHERE sku = $1", sku
    )
    assert [tuple(r) for r in rows] == [("ams", True, 7)]
