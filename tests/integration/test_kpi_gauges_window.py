"""The KPI gauges' figures kept between rounds (services/kpis/window.py) on the real PostgreSQL: the scripted day of
test_kpi_day.py handed to the handlers in two halves with a round after each, the second round reading only the
orders changed since the first; and the changes noted with the facts, read by snapshot, with a transaction that
commits late and rows that every round has read."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.kpis import repository
from services.kpis.domain import OrderFacts
from services.kpis.reports import Reporting
from services.kpis.settings import KpiSettings
from services.kpis.window import WindowFigures
from shared.backbone.db import Conn, connect
from shared.contracts import events as ev
from tests.integration.test_kpi_day import EXPECTED, Day, at, handle, scripted_day

DAY_END = at(1, 0)

ASKED: list[set[uuid.UUID]] = []  # the orders each read of facts asked for
WHOLE: list[datetime] = []  # the rounds that read the whole window (those that listed the orders placed in it)


class Reading(Reporting):
    async def facts(
        self, conn: Conn, since: datetime, until: datetime, only: Collection[uuid.UUID] | None = None
    ) -> list[OrderFacts]:
        ASKED.append(set(only or ()))
        return await super().facts(conn, since, until, only)


@pytest.fixture
def listing_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = repository.placed

    async def placed(conn: Conn, since: datetime, until: datetime) -> list[uuid.UUID]:
        WHOLE.append(since)
        return await listing(conn, since, until)

    monkeypatch.setattr(repository, "placed", placed)


def part(day: Day, records: list[Any]) -> Day:
    taken = Day(day.channel)
    taken.records = records
    return taken


@dataclass
class Round:
    figures: dict[str, Any] | None  # the channel's, None when it has none
    whole: bool  # read the whole window
    read: set[uuid.UUID]  # the orders whose facts it read


async def round_at(window: WindowFigures, channel: str, until: datetime) -> Round:
    asked, whole = len(ASKED), len(WHOLE)
    conn = await connect(KpiSettings())
    try:
        groups = await window.groups(conn, until)
    finally:
        await conn.close()
    found = [{k: v for k, v in g.items() if k != "group"} for g in groups if g["group"] == channel]
    return Round(found[0] if found else None, len(WHOLE) > whole, set().union(*ASKED[asked:]))


@pytest.mark.usefixtures("stack", "listing_noted")
async def test_a_round_reads_only_the_orders_changed_since_the_last_and_comes_to_the_days_figures() -> None:
    # given half of a scripted day taken by the KPI service, and a round of the gauges over it
    channel = f"kpi-{uuid.uuid4().hex[:8]}"
    day = scripted_day(channel)
    products = [r for r in day.records if isinstance(r.payload, ev.ProductUpserted)]
    events = [r for r in day.records if r not in products]
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    await handle(part(day, products + first), through_inbox=True)
    settings = KpiSettings()
    reading = Reading(settings.rules(), settings.shipping_rules(), settings.config().cost)
    window = WindowFigures(reading, timedelta(hours=24))
    halfway = await round_at(window, channel, DAY_END)
    assert halfway.whole  # the first round reads the whole window
    assert halfway.figures is not None and halfway.figures != EXPECTED
    # when the rest of the day is taken
    await handle(part(day, second), through_inbox=True)
    # then the next round reads the orders of the second half (and any the stack changed meanwhile), not the window,
    # and comes to the figures worked out by hand
    later = await round_at(window, channel, DAY_END)
    assert later.figures == EXPECTED
    assert not later.whole and {r.payload.order_id for r in second} <= later.read
    # and the catalogue sent again, every weight the same, has the next round read none of the day's orders again
    ordered = {r.payload.order_id for r in events}
    await handle(part(day, products), through_inbox=False)
    same = await round_at(window, channel, DAY_END)
    assert not same.whole and same.figures == EXPECTED and not ordered & same.read
    # and a product's new weight has the next round read again the orders with a shipment of it (the weight prices
    # them), not the whole window; with the weight put back, the day's figures come back
    sku = products[0].payload.sku
    shipping = {
        r.payload.order_id
        for r in events
        if isinstance(r.payload, ev.OrderShipped) and sku in {line.sku for line in r.payload.lines}
    }
    assert shipping and ordered - shipping
    reweighed = Day(channel)
    reweighed.product(sku, 20_000)
    await handle(reweighed, through_inbox=False)
    heavier = await round_at(window, channel, DAY_END)
    assert not heavier.whole and shipping <= heavier.read and not (ordered - shipping) & heavier.read
    assert heavier.figures is not None and heavier.figures["cost_per_order"] != EXPECTED["cost_per_order"]
    await handle(part(day, products[:1]), through_inbox=False)
    back = await round_at(window, channel, DAY_END)
    assert not back.whole and shipping <= back.read and back.figures == EXPECTED
    # and a round a day later, with none of them changed, finds the day's orders gone from the window
    next_day = await round_at(window, channel, at(2, 1))
    assert next_day.figures is None
    assert not next_day.whole and not {r.payload.order_id for r in events} & next_day.read


async def note(conn: asyncpg.Connection, order_id: uuid.UUID) -> None:
    await repository.note_changes(conn, [order_id])


@pytest.mark.usefixtures("stack")
async def test_changes_are_read_by_the_transactions_committed_since_a_snapshot_and_forgotten_once_read() -> None:
    settings = KpiSettings()
    writer, late, reader = [await connect(settings) for _ in range(3)]
    try:
        # given a change committed, and a transaction that noted one and has not committed yet
        before, in_flight, after = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await note(writer, before)
        open_transaction = late.transaction()
        await open_transaction.start()
        await note(late, in_flight)
        await repository.note_weights_changed(late, ["SKU-" + in_flight.hex])
        # when a round takes its snapshot, and then the late transaction and another commit
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            seen = await repository.snapshot(reader)
        await open_transaction.commit()
        await note(writer, after)
        # then the changes since that snapshot are the late one and the later one, not the one it saw
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            changed = await repository.changed_since(reader, seen)
            now_seen = await repository.snapshot(reader)
        assert {in_flight, after} <= changed.orders and before not in changed.orders
        assert "SKU-" + in_flight.hex in changed.weights
        # and forgetting what a snapshot saw deletes the one it saw and keeps what came since
        await repository.forget_changes(reader, seen)
        left = {r["order_id"] for r in await reader.fetch("SELECT order_id FROM facts_changed")}
        assert before not in left and {in_flight, after} <= left
        await repository.forget_changes(reader, now_seen)
        left = {r["order_id"] for r in await reader.fetch("SELECT order_id FROM facts_changed")}
        assert not {in_flight, after} & left
        # and a row naming neither an order nor a SKU (an earlier version's note of a product) still means everything
        await writer.execute("INSERT INTO facts_changed DEFAULT VALUES")
        async with reader.transaction(isolation="repeatable_read", readonly=True):
            assert (await repository.changed_since(reader, now_seen)).everything
    finally:
        for conn in (writer, late, reader):
            await conn.close()
