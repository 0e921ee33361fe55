"""Fulfillment on the real stack, each scenario from the order's submission to its final state: the promise
after the warehouse's cut-off, cancellation before picking and after shipment, a delivery exception and a
short pick. Cancellation requests are published as capture would publish them (an envelope on
oms.orders.cancellations); the warehouse and carrier are the simulator, steered by its test triggers."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from services.fulfillment import tracking
from services.fulfillment.settings import FulfillmentSettings
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document
from tests.integration.allocation_steps import open_shipment
from tests.local import client
from tests.scenario import TopicReader, new_skus, seed
from tests.waiting import eventually

CARRIERS = {c.code: c for c in FulfillmentSettings().shipping_rules().carriers}


async def submit(http: httpx.AsyncClient, lines: list[tuple[str, int]], postal_code: str = "1012 JS", **kw: Any) -> str:
    document = order_document(lines, **kw)
    document["shipping_address"]["postal_code"] = postal_code
    response = await http.post("/v1/orders", json=document)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "validated"
    return str(response.json()["order_id"])


async def events_of(reader: TopicReader, order_id: str, event_type: str, count: int = 1) -> list[dict[str, Any]]:
    """The payloads of the first `count` events of this type for the order, waiting for them."""

    async def found() -> list[dict[str, Any]]:
        return [b["payload"] for b in await reader.bodies_for(order_id) if b["type"] == event_type]

    payloads: list[dict[str, Any]] = await eventually(found, lambda seen: len(seen) >= count)
    return payloads


async def request_cancellation(order_id: str, lines: list[ev.ItemQuantity] | None = None) -> None:
    """What capture publishes when it accepts a cancel request for an order it has not seen ship."""
    request = ev.OrderCancellationRequested(
        order_id=uuid.UUID(order_id), lines=lines, reason="customer changed their mind", requested_at=datetime.now(UTC)
    )
    envelope = wrap(request, producer="capture", order_id=request.order_id)
    await client.publish(topics.ORDER_CANCELLATIONS.name, [(order_id, envelope.model_dump(mode="json"))])


async def test_an_express_order_placed_after_the_cutoff_is_promised_the_next_business_days_delivery(
    http, db, pipeline
) -> None:
    # given fulfillment's clock at Friday 12 February 2027, 17:30 in Amsterdam: past the Amsterdam cut-off (16:00)
    fulfillment = pipeline["fulfillment"]
    fulfillment.stop()
    fulfillment.env = {"OMS_CLOCK_START": "2027-02-12T17:30:00+01:00"}
    fulfillment.start()
    try:
        fulfillment.wait_ready()
        (sku,) = new_skus(1)
        await seed([("ams", sku, 5)])
        async with TopicReader(topics.FULFILLMENT_EVENTS.name) as shipments:
            # when an express order of two units (900 g in the simulator's warehouse) to the Netherlands comes in
            order_id = await submit(http, [(sku, 2)], service_level="express")
            (shipped,) = await events_of(shipments, order_id, "OrderShipped")
    finally:
        fulfillment.stop()
        fulfillment.env = {}
        fulfillment.start()
        fulfillment.wait_ready()

    # then it leaves on Monday 15 and is promised for Wednesday 17 (two business days), not Tuesday 16
    assert shipped["promised_delivery"] == "2027-02-17"
    # by the cheapest service delivering by Wednesday: SwiftPost Parcel (2 days, 5.80), not ParcelNet Economy
    # (3 days, 4.20) nor the dearer one-day services
    assert (shipped["carrier"], shipped["service"]) == ("swiftpost", "parcel")
    carrier = CARRIERS["swiftpost"]
    assert tracking.is_valid(carrier.tracking, shipped["tracking_number"])
    assert shipped["tracking_url"] == carrier.tracking_link(shipped["tracking_number"])
    assert shipped["lines"] == [{"sku": sku, "quantity": 2}]
    assert shipped["order_complete"] is True
    row = await db.fetchrow(
        "SELECT s.promised_delivery, s.leaves_on, s.price, p.promised_delivery AS promised_at_release"
        " FROM fulfillment.shipments s JOIN fulfillment.pick_tasks p USING (pick_task_id)"
        " WHERE s.tracking_number = $1",
        shipped["tracking_number"],
    )
    assert (str(row["promised_delivery"]), str(row["promised_at_release"])) == ("2027-02-17", "2027-02-17")
    assert (str(row["leaves_on"]), str(row["price"])) == ("2027-02-15", "5.80")


async def test_a_cancellation_before_picking_withdraws_the_pick_task_and_a_late_warehouse_report_is_ignored(
    http, db, pipeline
) -> None:
    # given an order whose pick task the (simulated) warehouse holds before picking
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    async with (
        TopicReader(topics.PICK_TASKS.name) as pick_tasks,
        TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes,
        TopicReader(topics.dead_letter_topic("fulfillment")) as dead_letters,
    ):
        order_id = await submit(http, [(sku, 1)], postal_code="HOLD 1")
        (task,) = await events_of(pick_tasks, order_id, "PickTaskReleased")

        # when the customer cancels the whole order
        await request_cancellation(order_id)

        # then the warehouse is told to stop, on its own key, and allocation may release the stock
        (cancelled,) = await events_of(pick_tasks, order_id, "PickTaskCancelled")
        assert (cancelled["pick_task_id"], cancelled["warehouse_id"]) == (task["pick_task_id"], "ams")
        assert cancelled["reason"] == "customer changed their mind"
        keys = [r.key for r in pick_tasks.seen if b"PickTaskCancelled" in r.value and order_id.encode() in r.value]
        assert keys == [b"ams"]
        (accepted,) = await events_of(outcomes, order_id, "CancellationAccepted")
        assert accepted["withdrawn_shipments"] == [task["pick_task_id"]]
        assert accepted["lines"] is None
        task_id = uuid.UUID(task["pick_task_id"])
        assert await db.fetchval("SELECT status FROM fulfillment.pick_tasks WHERE pick_task_id = $1", task_id) == (
            "cancelled"
        )

        # and a warehouse report arriving for the withdrawn task is recorded as ignored, not dead-lettered
        await client.publish(
            topics.WAREHOUSE_EVENTS.name,
            [
                (
                    "ams",
                    {
                        "pick_task_id": task["pick_task_id"],
                        "warehouse_id": "ams",
                        "kind": "picked",
                        "lines": [{"sku": sku, "quantity": 1}],
                        "occurred_at": datetime.now(UTC).isoformat(),
                    },
                )
            ],
        )
        outcome = await eventually(
            lambda: db.fetchval(
                "SELECT outcome FROM fulfillment.warehouse_reports WHERE pick_task_id = $1 AND kind = 'picked'",
                task_id,
            ),
            lambda seen: seen is not None,
        )
        assert outcome == "ignored: task cancelled"
        assert not [r for r in await dead_letters.read() if task["pick_task_id"].encode() in (r.value or b"")]
        assert not [b for b in await outcomes.bodies_for(order_id) if b["type"] == "OrderShipped"]


async def test_a_cancellation_after_shipment_is_refused_and_nothing_is_withdrawn(http, db, pipeline) -> None:
    # given an order that has shipped
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    async with (
        TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes,
        TopicReader(topics.PICK_TASKS.name) as pick_tasks,
    ):
        order_id = await submit(http, [(sku, 1)])
        (shipped,) = await events_of(outcomes, order_id, "OrderShipped")

        # when a cancellation request for it arrives
        await request_cancellation(order_id)

        # then it is refused, naming the shipment, and the pick task stays as it was
        (refused,) = await events_of(outcomes, order_id, "CancellationRefused")
        assert refused["reason"] == (
            f"already packed and handed to the carrier: shipment {shipped['pick_task_id']} from ams"
        )
        assert not [b for b in await outcomes.bodies_for(order_id) if b["type"] == "CancellationAccepted"]
        assert not [b for b in await pick_tasks.bodies_for(order_id) if b["type"] == "PickTaskCancelled"]
    row = await db.fetchrow(
        "SELECT p.status, c.outcome FROM fulfillment.pick_tasks p JOIN fulfillment.cancellations c USING (order_id)"
        " WHERE p.order_id = $1",
        uuid.UUID(order_id),
    )
    assert (row["status"], row["outcome"]) == ("packed", "refused")


async def test_a_cancellation_of_an_order_with_no_pick_task_is_accepted_with_nothing_withdrawn(pipeline) -> None:
    # an order fulfillment never got a shipment for (all of it backordered, say)
    order_id = str(uuid.uuid4())
    async with TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes:
        await request_cancellation(order_id)
        (accepted,) = await events_of(outcomes, order_id, "CancellationAccepted")
    assert accepted["withdrawn_shipments"] == []


async def test_a_delivery_exception_is_recorded_and_emitted_and_the_parcel_still_reaches_delivered(http, db) -> None:
    # given an order to an address where the simulated carrier finds nobody home the first time
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    async with TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes:
        order_id = await submit(http, [(sku, 1)], postal_code="EXC 42")
        (shipped,) = await events_of(outcomes, order_id, "OrderShipped")

        # then the exception is emitted for notifications to tell the customer
        (exception,) = await events_of(outcomes, order_id, "DeliveryException")
        assert (exception["tracking_number"], exception["carrier"]) == (shipped["tracking_number"], shipped["carrier"])
        assert exception["pick_task_id"] == shipped["pick_task_id"]
        assert exception["detail"] == "recipient not at home; delivery will be attempted again"
        # and the second attempt delivers the order
        await events_of(outcomes, order_id, "OrderDelivered")

    # and every carrier update is on record, the exception with its detail
    updates = await db.fetch(
        "SELECT kind, detail FROM fulfillment.carrier_events WHERE tracking_number = $1 ORDER BY occurred_at",
        shipped["tracking_number"],
    )
    assert [u["kind"] for u in updates] == ["in_transit", "exception", "out_for_delivery", "delivered"]
    shipment = await db.fetchrow(
        "SELECT last_carrier_status, exception_detail, delivered_at FROM fulfillment.shipments"
        " WHERE tracking_number = $1",
        shipped["tracking_number"],
    )
    assert shipment["last_carrier_status"] == "delivered" and shipment["delivered_at"] is not None
    assert shipment["exception_detail"] == exception["detail"]


async def test_a_short_pick_is_reported_to_allocation_and_the_picked_units_ship(http, db) -> None:
    # given a SKU the simulated warehouse finds one unit short of, and one it has in full
    (short,) = new_skus(1, prefix="T-SHORT")
    (full,) = new_skus(1)
    await seed([("ams", short, 3), ("ams", full, 5)])
    async with TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes:
        # when an order takes three of the first and one of the second
        order_id = await submit(http, [(short, 3), (full, 1)])

        # then the missing unit is reported for allocation to re-route
        (reported,) = await events_of(outcomes, order_id, "ShortPickReported")
        (shipped,) = await events_of(outcomes, order_id, "OrderShipped")
    assert reported["missing"] == [{"sku": short, "quantity": 1}]
    assert (reported["shipment_id"], reported["warehouse_id"]) == (shipped["pick_task_id"], "ams")
    # and the parcel carries what was picked
    assert sorted((line["sku"], line["quantity"]) for line in shipped["lines"]) == sorted([(short, 2), (full, 1)])
    row = await db.fetchrow(
        "SELECT p.status, s.lines FROM fulfillment.pick_tasks p JOIN fulfillment.shipments s USING (pick_task_id)"
        " WHERE p.pick_task_id = $1",
        uuid.UUID(shipped["pick_task_id"]),
    )
    assert row["status"] == "packed"
    packed = json.loads(row["lines"])
    assert sorted((line["sku"], line["quantity"]) for line in packed) == sorted([(short, 2), (full, 1)])


async def test_carrier_updates_for_unknown_or_malformed_tracking_numbers_are_dead_lettered_with_the_reason(
    pipeline,
) -> None:
    parcelnet = CARRIERS["parcelnet"]
    unknown = tracking.issue(parcelnet.tracking, 99_999_999_999)  # valid check digit, never issued here
    malformed = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)
    updates = [
        (number, {"tracking_number": number, "carrier": "parcelnet", "kind": "in_transit", "occurred_at": now})
        for number, now in ((unknown, datetime.now(UTC).isoformat()), (malformed, datetime.now(UTC).isoformat()))
    ]
    async with TopicReader(topics.dead_letter_topic("fulfillment")) as dead_letters:
        await client.publish(topics.CARRIER_EVENTS.name, updates)
        records = await eventually(dead_letters.read, lambda seen: len(seen) >= 2)
    reasons = {r.key.decode(): dict(r.headers)["dlq.reason"].decode() for r in records}
    assert reasons[unknown] == f"handler failed: LookupError: no parcelnet shipment with tracking number {unknown}"
    assert reasons[malformed] == f"handler failed: LookupError: {malformed} is not a valid parcelnet tracking number"


async def test_a_tasks_picked_and_packed_and_a_resent_packed_published_together_ship_one_parcel(
    http, db, pipeline
) -> None:
    # given an order released to Amsterdam that the simulated warehouse leaves to us (a HOLD- SKU is never picked)
    (sku,) = new_skus(1, prefix="HOLD")
    await seed([("ams", sku, 5)])
    async with TopicReader(topics.FULFILLMENT_EVENTS.name) as outcomes:
        order_id = await submit(http, [(sku, 2)])
        task_id = await open_shipment(db, order_id, "ams")
        await eventually(
            lambda: db.fetchval("SELECT status FROM fulfillment.pick_tasks WHERE pick_task_id = $1", task_id),
            lambda status: status == "released",
        )

        # when the warehouse's picked and packed reports, and the packed one again, are published together
        def report(kind: str) -> tuple[str, dict[str, Any]]:
            body = {
                "pick_task_id": str(task_id),
                "warehouse_id": "ams",
                "kind": kind,
                "occurred_at": "2027-02-15T09:00Z",
            }
            return "ams", body | ({"package": {"weight_grams": 900}} if kind == "packed" else {})

        await client.publish(topics.WAREHOUSE_EVENTS.name, [report("picked"), report("packed"), report("packed")])

        # then the order ships once, as one parcel, and the carrier delivers it
        (shipped,) = await events_of(outcomes, order_id, "OrderShipped")
        await events_of(outcomes, order_id, "OrderDelivered")  # written after the shipment: all before it is read
        told = [b["type"] for b in await outcomes.bodies_for(order_id)]
    assert told.count("OrderShipped") == 1 and shipped["order_complete"] is True
    parcels = await db.fetch("SELECT tracking_number FROM fulfillment.shipments WHERE pick_task_id = $1", task_id)
    assert [p["tracking_number"] for p in parcels] == [shipped["tracking_number"]]
    # and every report is on record, the resent one as ignored
    recorded = await db.fetch("SELECT outcome FROM fulfillment.warehouse_reports WHERE pick_task_id = $1", task_id)
    assert sorted(r["outcome"] for r in recorded) == ["applied: packed", "applied: picked", "ignored: task packed"]
