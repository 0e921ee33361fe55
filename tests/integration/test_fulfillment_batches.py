"""Fulfillment's warehouse and carrier report handlers over whole batches, against the real PostgreSQL schema, in one
transaction per test that is rolled back (as the consumer hands them a batch: prepared, then its records in the
order read). A batch takes effect as its reports one by one would (a task's picked and packed in one batch, a
repeat among them) and is locked, loaded and saved in a fixed number of statements whatever its size."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.fulfillment import tracking
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.integration.test_allocation_batches import Counted
from tests.integration.test_fulfillment_handlers import (  # noqa: F401 - fixture
    MONDAY_MORNING,
    Fulfillment,
    allocate,
    fulfillment,
    shipment,
)


async def batch(f: Fulfillment, topic: topics.Topic, *payloads: ev.Contract) -> int:
    """Hand the reports to fulfillment as the consumer does one batch; returns the statements it took."""
    records = [
        Inbound(Origin(topic.name, 0, offset, None, None, ()), wrap(p, producer=topic.writer), p)
        for offset, p in enumerate(payloads)
    ]
    statements: list[str] = []
    conn = Counted(f.conn, statements)
    await f.handlers.prepare(conn, records)  # type: ignore[arg-type]
    await f.handlers.routes()[type(payloads[0])](conn, records)  # type: ignore[arg-type]
    return len(statements)


def report(s: ev.Shipment, kind: str, picked: list[tuple[str, int]] | None = None) -> ev.WarehouseReported:
    return ev.WarehouseReported(
        pick_task_id=s.shipment_id,
        warehouse_id=s.warehouse_id,
        kind=kind,
        lines=None if picked is None else [ev.ItemQuantity(sku=sku, quantity=q) for sku, q in picked],
        package=ev.Package(weight_grams=900) if kind == "packed" else None,
        occurred_at=MONDAY_MORNING,
    )


def update(shipped: dict[str, Any], kind: str, at: datetime) -> ev.CarrierReported:
    return ev.CarrierReported(
        tracking_number=shipped["tracking_number"], carrier=shipped["carrier"], kind=kind, occurred_at=at
    )


async def outcomes(f: Fulfillment, *shipments: ev.Shipment) -> list[tuple[str, str]]:
    """The reports on record for the tasks, sorted (one transaction records them all at the same moment)."""
    rows = await f.conn.fetch(
        "SELECT pick_task_id, kind, outcome FROM warehouse_reports WHERE pick_task_id = ANY($1::uuid[])",
        [s.shipment_id for s in shipments],
    )
    names = {s.shipment_id: s.warehouse_id for s in shipments}
    return sorted((f"{names[r['pick_task_id']]} {r['kind']}", r["outcome"]) for r in rows)


async def test_a_batch_with_a_tasks_picked_and_packed_and_a_repeat_ships_one_parcel_and_tells_it_once(
    fulfillment: Fulfillment,  # noqa: F811
) -> None:
    f = fulfillment
    # given an order split over Amsterdam and Frankfurt, both released
    ams, fra = shipment("ams", ("A", 1)), shipment("fra", ("B", 3), ("C", 1))
    order_id = await allocate(f, ams, fra)

    # when one batch brings Amsterdam's picked and packed, its packed again (a resend), then Frankfurt's short pick
    # and packed
    await batch(
        f,
        topics.WAREHOUSE_EVENTS,
        report(ams, "picked"),
        report(ams, "packed"),
        report(ams, "packed"),
        report(fra, "short_picked", [("B", 2), ("C", 1)]),
        report(fra, "packed"),
    )

    # then each report is recorded with what it did, the resend as ignored
    assert await outcomes(f, ams, fra) == sorted(
        [
            ("ams picked", "applied: picked"),
            ("ams packed", "applied: packed"),
            ("ams packed", "ignored: task packed"),
            ("fra short_picked", "applied: short_picked"),
            ("fra packed", "applied: packed"),
        ]
    )
    # and each task left as one parcel, Frankfurt's with what it picked
    parcels = await f.conn.fetch(
        "SELECT pick_task_id, tracking_number, lines FROM shipments WHERE order_id = $1 ORDER BY shipped_at", order_id
    )
    assert sorted(p["pick_task_id"] for p in parcels) == sorted([ams.shipment_id, fra.shipment_id])
    assert {p["pick_task_id"]: p["lines"] for p in parcels}[fra.shipment_id] == [
        {"sku": "B", "quantity": 2},
        {"sku": "C", "quantity": 1},
    ]
    assert (await f.status(ams.shipment_id), await f.status(fra.shipment_id)) == ("packed", "packed")
    # and the events are those the reports one by one tell, in their order: only the last parcel completes the order
    told = [(kind, p) for _, _, kind, p in await f.published() if kind in ("OrderShipped", "ShortPickReported")]
    assert [(kind, p.get("pick_task_id", p.get("shipment_id"))) for kind, p in told] == [
        ("OrderShipped", str(ams.shipment_id)),
        ("ShortPickReported", str(fra.shipment_id)),
        ("OrderShipped", str(fra.shipment_id)),
    ]
    (_, first), (_, short), (_, last) = told
    assert (first["order_complete"], last["order_complete"]) == (False, True)
    assert short["missing"] == [{"sku": "B", "quantity": 1}]
    assert last["lines"] == [{"sku": "B", "quantity": 2}, {"sku": "C", "quantity": 1}]
    numbers = {p["tracking_number"] for p in parcels}
    assert numbers == {first["tracking_number"], last["tracking_number"]} and len(numbers) == 2
    for shipped in (first, last):
        carrier = f.handlers.rules.carrier(shipped["carrier"])
        assert carrier is not None and tracking.is_valid(carrier.tracking, shipped["tracking_number"])


async def test_a_batch_of_carrier_updates_delivers_the_order_once_after_its_last_parcel(
    fulfillment: Fulfillment,  # noqa: F811
) -> None:
    f = fulfillment
    # given an order's two parcels with the carrier
    ams, fra = shipment("ams", ("A", 1)), shipment("fra", ("B", 1))
    order_id = await allocate(f, ams, fra)
    await batch(f, topics.WAREHOUSE_EVENTS, report(ams, "packed"), report(fra, "packed"))
    first, second = await f.of_type("OrderShipped")

    # when one batch brings the first in transit and delivered, that delivery again, then the second delivered and a
    # late exception for it
    at = MONDAY_MORNING + timedelta(days=1)
    await batch(
        f,
        topics.CARRIER_EVENTS,
        update(first, "in_transit", at),
        update(first, "delivered", at + timedelta(hours=4)),
        update(first, "delivered", at + timedelta(hours=4)),
        update(second, "delivered", at + timedelta(hours=5)),
        update(second, "exception", at + timedelta(hours=6)),
    )

    # then the order is delivered once, when its second parcel was, and nothing is told of the news after delivery
    told = [(kind, p) for _, _, kind, p in await f.published() if kind in ("OrderDelivered", "DeliveryException")]
    assert [kind for kind, _ in told] == ["OrderDelivered"]
    ((_, delivered),) = told
    assert delivered["order_id"] == str(order_id)
    assert datetime.fromisoformat(delivered["delivered_at"]) == at + timedelta(hours=5)
    # and every distinct update is on record, each parcel delivered at its carrier's time
    recorded = await f.conn.fetch(
        "SELECT tracking_number, kind FROM carrier_events WHERE tracking_number = ANY($1::text[]) ORDER BY occurred_at",
        [first["tracking_number"], second["tracking_number"]],
    )
    assert [(r["tracking_number"], r["kind"]) for r in recorded] == [
        (first["tracking_number"], "in_transit"),
        (first["tracking_number"], "delivered"),
        (second["tracking_number"], "delivered"),
        (second["tracking_number"], "exception"),
    ]
    parcels = await f.conn.fetch(
        "SELECT tracking_number, last_carrier_status, delivered_at, exception_at FROM shipments WHERE order_id = $1",
        order_id,
    )
    assert {
        p["tracking_number"]: (p["last_carrier_status"], p["delivered_at"], p["exception_at"]) for p in parcels
    } == {
        first["tracking_number"]: ("delivered", at + timedelta(hours=4), None),
        second["tracking_number"]: ("delivered", at + timedelta(hours=5), None),
    }


async def test_a_batch_of_many_reports_takes_as_many_statements_as_a_batch_of_one(fulfillment: Fulfillment) -> None:  # noqa: F811
    f = fulfillment
    # given one order and then ten, each with a task released
    alone = shipment("ams", ("A", 1))
    await allocate(f, alone)
    many = [shipment("ams", ("A", 1)) for _ in range(10)]
    for s in many:
        await allocate(f, s)

    # when the one's picked and packed come in one batch, and the ten's in another
    one = await batch(f, topics.WAREHOUSE_EVENTS, report(alone, "picked"), report(alone, "packed"))
    ten = await batch(f, topics.WAREHOUSE_EVENTS, *[report(s, k) for s in many for k in ("picked", "packed")])
    # and then their carrier updates, one by one and ten at once
    shipped = {p["pick_task_id"]: p for p in await f.of_type("OrderShipped")}
    at = MONDAY_MORNING + timedelta(days=1)
    delivered_one = await batch(f, topics.CARRIER_EVENTS, update(shipped[str(alone.shipment_id)], "delivered", at))
    delivered_ten = await batch(
        f, topics.CARRIER_EVENTS, *[update(shipped[str(s.shipment_id)], "delivered", at) for s in many]
    )

    # then the ten took no more statements than the one, and each of the eleven orders shipped and was delivered
    assert (ten, delivered_ten) == (one, delivered_one)
    assert len(shipped) == 11
    assert len(await f.of_type("OrderDelivered")) == 11


async def test_a_batch_with_a_report_for_an_unknown_task_is_refused_whole(fulfillment: Fulfillment) -> None:  # noqa: F811
    # the consumer then handles the batch's records one by one and dead-letters this one alone
    f = fulfillment
    known = shipment("ams", ("A", 1))
    await allocate(f, known)
    unknown = shipment("ams", ("A", 1))
    with pytest.raises(LookupError, match=f"no pick task {unknown.shipment_id} at warehouse ams"):
        await batch(f, topics.WAREHOUSE_EVENTS, report(known, "picked"), report(unknown, "picked"))
