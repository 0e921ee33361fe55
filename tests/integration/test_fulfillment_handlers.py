"""Fulfillment's handlers against the real PostgreSQL schema, one transaction per test that is rolled back:
the events a handler would publish are read back from the outbox. Covers what the simulator cannot steer:
split orders, shipments allocated after a cancellation, short picks of nothing, partial cancellation,
malformed or repeated reports."""

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.fulfillment.handlers import FulfillmentHandlers
from services.fulfillment.settings import FulfillmentSettings
from shared.backbone.db import connect
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from shared.contracts.topics import Topic

# Monday 15 February 2027, 10:00 in Amsterdam: before every warehouse's cut-off
MONDAY_MORNING = datetime(2027, 2, 15, 9, 0, tzinfo=UTC)
SHIP_TO = ev.Address(name="Test Customer", line1="Dam 1", city="Amsterdam", postal_code="1012 JS", country="NL")


@dataclass
class Fulfillment:
    conn: asyncpg.Connection
    handlers: FulfillmentHandlers
    outbox_from: int

    async def handle(self, topic: Topic, payload: ev.Contract, order_id: uuid.UUID | None = None) -> None:
        envelope = wrap(payload, producer="test", order_id=order_id)
        route = self.handlers.routes().get(type(payload))
        if route is not None:  # as the consumer does: events fulfillment takes nothing from pass it by
            await route(self.conn, [Inbound(Origin(topic.name, 0, 0, None, None, ()), envelope, payload)])

    async def handle_together(self, topic: Topic, payloads: list[ev.Contract]) -> None:
        """The records handed over in one call, as the consumer hands over a batch's records of one handler."""
        records = [
            Inbound(Origin(topic.name, 0, n, None, None, ()), wrap(p, producer="test", order_id=p.order_id), p)  # type: ignore[attr-defined]
            for n, p in enumerate(payloads)
        ]
        await self.handlers.routes()[type(payloads[0])](self.conn, records)

    async def published(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(topic, key, type, payload) of everything written to the outbox so far, in order."""
        rows = await self.conn.fetch("SELECT topic, key, body FROM outbox WHERE id > $1 ORDER BY id", self.outbox_from)
        bodies = [(r["topic"], r["key"], json.loads(r["body"])) for r in rows]
        return [(topic, key, body["type"], body["payload"]) for topic, key, body in bodies]

    async def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [payload for _, _, kind, payload in await self.published() if kind == event_type]

    async def status(self, task_id: uuid.UUID) -> str:
        return str(await self.conn.fetchval("SELECT status FROM pick_tasks WHERE pick_task_id = $1", task_id))


@pytest.fixture
async def fulfillment(stack: None) -> AsyncIterator[Fulfillment]:
    settings = FulfillmentSettings()
    conn = await connect(settings)
    # One snapshot for the whole test: what the running fulfillment service commits meanwhile stays out of view.
    transaction = conn.transaction(isolation="repeatable_read")
    await transaction.start()
    try:
        handlers = FulfillmentHandlers(settings.shipping_rules(), settings.warehouses(), lambda: MONDAY_MORNING)
        yield Fulfillment(conn, handlers, await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))
    finally:
        await transaction.rollback()
        await conn.close()


def shipment(warehouse: str, *lines: tuple[str, int]) -> ev.Shipment:
    items = [ev.ItemQuantity(sku=s, quantity=q) for s, q in lines]
    return ev.Shipment(shipment_id=uuid.uuid4(), warehouse_id=warehouse, lines=items)


async def allocate(f: Fulfillment, *shipments: ev.Shipment, level: str = "standard") -> uuid.UUID:
    order_id = uuid.uuid4()
    allocated = ev.OrderAllocated(
        order_id=order_id,
        shipments=list(shipments),
        ship_to=SHIP_TO,
        service_level=level,
    )
    await f.handle(topics.ALLOCATION_EVENTS, allocated, order_id)
    return order_id


async def report(f: Fulfillment, s: ev.Shipment, kind: str, lines: list[tuple[str, int]] | None = None, grams=900):
    await f.handle(
        topics.WAREHOUSE_EVENTS,
        ev.WarehouseReported(
            pick_task_id=s.shipment_id,
            warehouse_id=s.warehouse_id,
            kind=kind,
            lines=None if lines is None else [ev.ItemQuantity(sku=sku, quantity=q) for sku, q in lines],
            package=ev.Package(weight_grams=grams) if kind == "packed" and grams is not None else None,
            occurred_at=MONDAY_MORNING,
        ),
    )


async def carrier(f: Fulfillment, shipped: dict[str, Any], kind: str, carrier_code: str | None = None) -> None:
    await f.handle(
        topics.CARRIER_EVENTS,
        ev.CarrierReported(
            tracking_number=shipped["tracking_number"],
            carrier=carrier_code or shipped["carrier"],
            kind=kind,
            occurred_at=datetime.now(UTC),
        ),
    )


async def cancel(f: Fulfillment, order_id: uuid.UUID, lines: list[tuple[str, int]] | None = None) -> None:
    items = None if lines is None else [ev.ItemQuantity(sku=s, quantity=q) for s, q in lines]
    request = ev.OrderCancellationRequested(
        order_id=order_id, lines=items, reason="customer", requested_at=MONDAY_MORNING
    )
    await f.handle(topics.ORDER_CANCELLATIONS, request, order_id)


async def test_a_split_order_ships_parcel_by_parcel_and_only_the_last_one_completes_it(fulfillment) -> None:
    f = fulfillment
    ams, fra = shipment("ams", ("A", 1)), shipment("fra", ("B", 2))
    order_id = await allocate(f, ams, fra)
    released = [(topic, key) for topic, key, kind, _ in await f.published() if kind == "PickTaskReleased"]
    assert released == [(topics.PICK_TASKS.name, "ams"), (topics.PICK_TASKS.name, "fra")]

    await report(f, ams, "packed")
    await report(f, fra, "picked")
    await report(f, fra, "packed")
    first, second = await f.of_type("OrderShipped")
    assert (first["pick_task_id"], first["order_complete"]) == (str(ams.shipment_id), False)
    assert (second["pick_task_id"], second["order_complete"]) == (str(fra.shipment_id), True)
    assert second["lines"] == [{"sku": "B", "quantity": 2}]
    # promised at release Monday morning, standard: five business days, Monday 22
    assert first["promised_delivery"] == second["promised_delivery"] == "2027-02-22"

    await carrier(f, first, "delivered")
    assert await f.of_type("OrderDelivered") == []
    await carrier(f, second, "delivered")
    (delivered,) = await f.of_type("OrderDelivered")
    assert delivered["order_id"] == str(order_id)


async def test_a_shipment_allocated_after_the_whole_order_was_cancelled_never_reaches_the_warehouse(
    fulfillment,
) -> None:
    f = fulfillment
    late = shipment("ams", ("A", 1))
    order_id = uuid.uuid4()
    await cancel(f, order_id)  # nothing released yet: accepted, nothing to withdraw
    allocated = ev.OrderAllocated(order_id=order_id, shipments=[late], ship_to=SHIP_TO, service_level="standard")
    await f.handle(topics.ALLOCATION_EVENTS, allocated, order_id)

    first, second = await f.of_type("CancellationAccepted")
    assert first["withdrawn_shipments"] == []
    assert second["withdrawn_shipments"] == [str(late.shipment_id)]
    assert await f.of_type("PickTaskReleased") == []
    assert await f.status(late.shipment_id) == "cancelled"


async def test_allocations_read_together_release_each_new_shipment_once_and_withdraw_those_of_cancelled_orders(
    fulfillment,
) -> None:
    f = fulfillment
    # given an order cancelled as a whole before its shipment was allocated
    cancelled_order = uuid.uuid4()
    await cancel(f, cancelled_order)
    # when one batch brings a split order's allocation, the cancelled order's, and the split order's again
    first, second, late = shipment("ams", ("A", 1)), shipment("fra", ("B", 2)), shipment("ams", ("C", 1))
    split_order = uuid.uuid4()
    split = ev.OrderAllocated(
        order_id=split_order, shipments=[first, second], ship_to=SHIP_TO, service_level="standard"
    )
    too_late = ev.OrderAllocated(order_id=cancelled_order, shipments=[late], ship_to=SHIP_TO, service_level="express")
    await f.handle_together(topics.ALLOCATION_EVENTS, [split, too_late, split])

    # then each shipment of the split order is released once, to its warehouse, in the order allocated
    released = await f.published()
    assert [
        (topic, key, kind, p["pick_task_id"]) for topic, key, kind, p in released if kind == "PickTaskReleased"
    ] == [
        (topics.PICK_TASKS.name, "ams", "PickTaskReleased", str(first.shipment_id)),
        (topics.PICK_TASKS.name, "fra", "PickTaskReleased", str(second.shipment_id)),
    ]
    assert [await f.status(s.shipment_id) for s in (first, second)] == ["released", "released"]
    # and the cancelled order's shipment is born withdrawn, never announced to its warehouse
    assert await f.status(late.shipment_id) == "cancelled"
    _, withdrawn = await f.of_type("CancellationAccepted")
    assert withdrawn["withdrawn_shipments"] == [str(late.shipment_id)]
    assert withdrawn["order_id"] == str(cancelled_order)


async def test_a_short_pick_of_nothing_closes_the_task_and_the_rest_of_the_order_completes_without_it(
    fulfillment,
) -> None:
    f = fulfillment
    empty, full = shipment("ams", ("A", 2)), shipment("fra", ("B", 1))
    await allocate(f, empty, full)
    await report(f, empty, "short_picked", [])
    (short,) = await f.of_type("ShortPickReported")
    assert short["missing"] == [{"sku": "A", "quantity": 2}]
    assert await f.status(empty.shipment_id) == "nothing_picked"

    await report(f, empty, "packed")  # nothing to pack: ignored, recorded
    await report(f, full, "packed")
    (shipped,) = await f.of_type("OrderShipped")
    assert (shipped["pick_task_id"], shipped["order_complete"]) == (str(full.shipment_id), True)
    outcomes = await f.conn.fetch(
        "SELECT kind, outcome FROM warehouse_reports WHERE pick_task_id = $1 ORDER BY recorded_at, kind DESC",
        empty.shipment_id,
    )
    assert [(r["kind"], r["outcome"]) for r in outcomes] == [
        ("short_picked", "applied: nothing_picked"),
        ("packed", "ignored: task nothing_picked"),
    ]


async def test_cancelling_some_lines_withdraws_only_the_task_holding_them(fulfillment) -> None:
    f = fulfillment
    ams, fra = shipment("ams", ("A", 1), ("C", 1)), shipment("fra", ("B", 2))
    order_id = await allocate(f, ams, fra)
    await report(f, fra, "picked")
    await cancel(f, order_id, [("A", 1)])

    (withdrawn,) = await f.of_type("PickTaskCancelled")
    assert (withdrawn["pick_task_id"], withdrawn["warehouse_id"]) == (str(ams.shipment_id), "ams")
    (accepted,) = await f.of_type("CancellationAccepted")
    assert accepted["withdrawn_shipments"] == [str(ams.shipment_id)]
    assert accepted["lines"] == [{"sku": "A", "quantity": 1}]
    assert (await f.status(ams.shipment_id), await f.status(fra.shipment_id)) == ("cancelled", "picked")


async def test_a_cancellation_refused_because_of_one_packed_task_leaves_the_open_ones_alone(fulfillment) -> None:
    f = fulfillment
    ams, fra = shipment("ams", ("A", 1)), shipment("fra", ("B", 1))
    order_id = await allocate(f, ams, fra)
    await report(f, ams, "packed")
    await cancel(f, order_id)
    (refused,) = await f.of_type("CancellationRefused")
    assert str(ams.shipment_id) in refused["reason"]
    assert await f.of_type("PickTaskCancelled") == []
    assert await f.status(fra.shipment_id) == "released"


async def test_a_packed_report_without_the_package_weight_is_refused_for_the_dead_letter_topic(fulfillment) -> None:
    f = fulfillment
    ams = shipment("ams", ("A", 1))
    await allocate(f, ams)
    with pytest.raises(ValueError, match="package weight"):
        await report(f, ams, "packed", grams=None)


async def test_an_overnight_parcel_no_service_can_deliver_in_time_is_promised_what_the_fastest_can_do(
    fulfillment,
) -> None:
    f = fulfillment
    ams = shipment("ams", ("A", 1))
    order_id = uuid.uuid4()
    to_us = SHIP_TO.model_copy(update={"country": "US"})
    allocated = ev.OrderAllocated(order_id=order_id, shipments=[ams], ship_to=to_us, service_level="overnight")
    await f.handle(topics.ALLOCATION_EVENTS, allocated, order_id)
    await report(f, ams, "packed")
    (shipped,) = await f.of_type("OrderShipped")
    # overnight promises Tuesday 16; NightLine next-day takes two business days to the US: Wednesday 17
    assert (shipped["carrier"], shipped["service"], shipped["promised_delivery"]) == (
        "nightline",
        "next-day",
        "2027-02-17",
    )
    promised = await f.conn.fetchrow(
        "SELECT p.promised_delivery AS at_release, s.promised_delivery AS now FROM pick_tasks p"
        " JOIN shipments s USING (pick_task_id) WHERE p.pick_task_id = $1",
        ams.shipment_id,
    )
    assert (str(promised["at_release"]), str(promised["now"])) == ("2027-02-16", "2027-02-17")


async def test_a_repeated_carrier_update_changes_nothing_and_one_from_another_carrier_is_refused(fulfillment) -> None:
    f = fulfillment
    ams = shipment("ams", ("A", 1))
    await allocate(f, ams)
    await report(f, ams, "packed")
    (shipped,) = await f.of_type("OrderShipped")
    update = ev.CarrierReported(
        tracking_number=shipped["tracking_number"],
        carrier=shipped["carrier"],
        kind="exception",
        occurred_at=MONDAY_MORNING,
    )
    await f.handle(topics.CARRIER_EVENTS, update)
    await f.handle(topics.CARRIER_EVENTS, update)  # the carrier sends the same update again, under a new id
    (exception,) = await f.of_type("DeliveryException")
    assert exception["detail"] == "the carrier reported a delivery exception"
    with pytest.raises(LookupError):
        await carrier(f, shipped, "delivered", carrier_code="someone-else")
