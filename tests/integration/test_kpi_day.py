"""`oms kpi` on a scripted day of orders (issue 11, part 5's must-show): the lifecycle events of ten orders of one
channel, with their own times, handed to the KPI service's handlers on the real PostgreSQL exactly as its consumer
hands a batch over (inbox claim, then each handler with its records), and the report read back through the running
service's API with the `oms` command. Every expected figure is worked out by hand below.

The events go to the handlers rather than onto the topics: published on the real topics, allocation, fulfillment and
notifications would act on them too (allocate, pick, mail), and their own events about the same orders, stamped with
today's time, would change the day's figures. The path over Kafka is pinned by test_kpi_pipeline.py."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.keys import DevelopmentKeys
from services.kpis.handlers import KpiHandlers
from services.kpis.settings import KpiSettings
from shared.backbone import inbox
from shared.backbone.consumer import steps
from shared.backbone.db import connect
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.local import LOCAL

OMS = Path(sys.executable).parent / "oms"
DAY = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
SHIP_TO = ev.Address(name="Kim Test", line1="Dam 1", city="Amsterdam", postal_code="1012 JS", country="NL")
CUSTOMER = ev.Customer(email="kim@example.com", name="Kim Test")


def at(day: int, hour: int) -> datetime:
    """An instant of the scripted days: 2 November 2026 is day 0."""
    return DAY + timedelta(days=day, hours=hour)


class Day:
    """The scripted day's events, each with the time it happened, in the order the topics would deliver them."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.records: list[Inbound[Any]] = []

    def event(self, payload: ev.Contract, order_id: uuid.UUID | None, when: datetime) -> None:
        topic = topics.topic_of(type(payload))
        envelope = wrap(payload, order_id=order_id, occurred_at=when, producer=topic.writer)
        self.records.append(Inbound(Origin(topic.name, 0, len(self.records), None, None, ()), envelope, payload))

    def product(self, sku: str, grams: int) -> None:
        self.event(ev.ProductUpserted(sku=sku, name=sku, weight_grams=grams, active=True), None, at(-1, 0))

    def validated(self, order_id: uuid.UUID, placed: datetime, lines: dict[str, int]) -> None:
        items = [ev.ItemQuantity(sku=s, quantity=n) for s, n in lines.items()]
        self.event(
            ev.OrderValidated(
                order_id=order_id,
                channel=self.channel,
                external_id=str(order_id),
                received_at=placed,
                currency="EUR",
                total="10.00",
                customer=CUSTOMER,
                ship_to=SHIP_TO,
                service_level="standard",
                lines=items,
            ),
            order_id,
            placed,
        )

    def allocated(self, order_id: uuid.UUID, reserved: dict[str, int], when: datetime) -> None:
        lines = [ev.ItemQuantity(sku=s, quantity=n) for s, n in reserved.items()]
        shipment = ev.Shipment(shipment_id=uuid.uuid4(), warehouse_id="ams", lines=lines)
        allocated = ev.OrderAllocated(
            order_id=order_id, shipments=[shipment], ship_to=SHIP_TO, service_level="standard"
        )
        self.event(allocated, order_id, when)

    def change_requested(self, order_id: uuid.UUID, change_id: str, lines: dict[str, int], when: datetime) -> None:
        items = [ev.ItemQuantity(sku=s, quantity=n) for s, n in lines.items()]
        requested = ev.OrderChangeRequested(order_id=order_id, change_id=change_id, order_version=1, ship_to=SHIP_TO,
                                            service_level="standard", lines=items, reroute=False,
                                            reason="customer request", requested_at=when)  # fmt: skip
        self.event(requested, order_id, when)

    def shipped(self, order_id: uuid.UUID, lines: dict[str, int], when: datetime, promised: date) -> uuid.UUID:
        task = uuid.uuid4()
        self.event(
            ev.OrderShipped(
                order_id=order_id,
                pick_task_id=task,
                warehouse_id="ams",
                carrier="parcelnet",
                service="economy",
                tracking_number=f"PN{task.hex[:12]}",
                shipped_at=when,
                lines=[ev.ItemQuantity(sku=s, quantity=n) for s, n in lines.items()],
                promised_delivery=promised,
            ),
            order_id,
            when,
        )
        return task

    def delivered(self, order_id: uuid.UUID, when: datetime) -> None:
        self.event(ev.OrderDelivered(order_id=order_id, delivered_at=when), order_id, when)


def scripted_day(channel: str) -> Day:
    run = uuid.uuid4().hex[:8]
    a, b, c = (f"KPI-{run}-{x}" for x in "ABC")
    day = Day(channel)
    day.product(a, 300)
    day.product(b, 500)
    day.product(c, 1200)
    perfect, late, short, damaged, exception, backordered, held_cancelled, released, cancelled, on_hold, refused = (
        uuid.uuid4() for _ in range(11)
    )
    # 1. on time, in full: placed 08:00, packed 14:00, promised the 4th, delivered the 4th at 10:00; changed at 09:00
    #    from three A to two (10.00 due back, refunded at 11:00)
    day.validated(perfect, at(0, 8), {a: 3})
    day.allocated(perfect, {a: 3}, at(0, 8))
    day.change_requested(perfect, "chg-1", {a: 2}, at(0, 9))
    lines = [ev.PricedLine(sku=a, quantity=2, unit_price="10.00")]
    applied = ev.OrderChangeApplied(order_id=perfect, change_id="chg-1", order_version=1, currency="EUR", lines=lines,
                                    shipping_price="4.95", total="24.95", paid="34.95", due_back="10.00")  # fmt: skip
    day.event(applied, perfect, at(0, 10))
    refunded = ev.ChangeRefunded(order_id=perfect, change_id="chg-1", refund_id=uuid.uuid4(), amount="10.00",
                                 currency="EUR", explanation=[], provider_reference="re_1")  # fmt: skip
    day.event(refunded, perfect, at(0, 11))
    day.shipped(perfect, {a: 2}, at(0, 14), date(2026, 11, 4))
    day.delivered(perfect, at(2, 10))
    # 2. late: placed 09:00, packed the next day at 09:00, promised the 4th, delivered the 5th at 12:00
    day.validated(late, at(0, 9), {a: 1})
    day.allocated(late, {a: 1}, at(0, 9))
    day.shipped(late, {a: 1}, at(1, 9), date(2026, 11, 4))
    day.delivered(late, at(3, 12))
    # 3. short: 1 A and 3 B ordered, 1 A and 1 B reserved at first (2 B backordered, never released), shipped
    day.validated(short, at(0, 10), {a: 1, b: 3})
    day.allocated(short, {a: 1, b: 1}, at(0, 10))
    day.shipped(short, {a: 1, b: 1}, at(0, 16), date(2026, 11, 5))
    day.delivered(short, at(2, 16))
    day.allocated(short, {b: 2}, at(3, 8))  # the backorder released later: not first time
    # 4. returned as damaged: on time and in full, then a return authorised for damage in transit
    day.validated(damaged, at(0, 11), {c: 1})
    day.allocated(damaged, {c: 1}, at(0, 11))
    day.shipped(damaged, {c: 1}, at(0, 15), date(2026, 11, 4))
    day.delivered(damaged, at(1, 11))
    label = ev.ReturnLabel(carrier="parcelnet", service="economy", warehouse_id="ams", weight_grams=1200, price="5.90")
    rma = ev.ReturnAuthorised(
        order_id=damaged,
        return_id=uuid.uuid4(),
        rma=f"RMA-{run}".upper(),
        lines=[ev.ReturnLine(sku=c, quantity=1, reason="damaged.in_transit")],
        label=label,
        expires_at=at(33, 0),
    )
    day.event(rma, damaged, at(3, 9))
    # 5. the carrier could not find the address on the way, delivered on the promised day all the same
    day.validated(exception, at(0, 12), {a: 1})
    day.allocated(exception, {a: 1}, at(0, 12))
    task = day.shipped(exception, {a: 1}, at(0, 18), date(2026, 11, 4))
    detail = "address unknown: house number missing"
    day.event(
        ev.DeliveryException(
            order_id=exception,
            pick_task_id=task,
            carrier="parcelnet",
            tracking_number="PN1",
            detail=detail,
            occurred_at=at(1, 9),
        ),
        exception,
        at(1, 9),
    )
    day.delivered(exception, at(2, 12))
    # 6. backordered whole (no stock of B), still waiting
    day.validated(backordered, at(0, 13), {b: 2})
    missing = [ev.ItemQuantity(sku=b, quantity=2)]
    day.event(ev.OrderBackordered(order_id=backordered, reason="no stock", missing=missing), backordered, at(0, 13))
    # 7. held at 14:00, cancelled from hold at 18:00 (never validated)
    held = ev.OrderHeld(
        order_id=held_cancelled,
        channel=channel,
        external_id="held-1",
        holds=[ev.HoldPlaced(hold_type="fraud", reason="velocity")],
        score=80,
        level="high",
        recommendation="review",
    )
    day.event(held, held_cancelled, at(0, 14))
    gone = ev.HeldOrderCancelled(
        order_id=held_cancelled,
        channel=channel,
        external_id="held-1",
        customer=CUSTOMER,
        reason="operator",
        expired=False,
        holds=["fraud"],
    )
    day.event(gone, held_cancelled, at(0, 18))
    # 8. held at 07:00, released at 09:00; 2 A ordered, 1 cancelled by the customer before the pick; then on time
    #    and in full (what is still owed): packed 15:00, delivered the 3rd at 13:00
    day.event(held.model_copy(update={"order_id": released, "external_id": "held-2"}), released, at(0, 7))
    release = ev.HoldReleased(order_id=released, hold_type="fraud", released_by="operator")
    day.event(release, released, at(0, 9))
    day.validated(released, at(0, 7), {a: 2})
    day.allocated(released, {a: 2}, at(0, 9))
    one = [ev.ItemQuantity(sku=a, quantity=1)]
    day.event(ev.OrderCancelled(order_id=released, lines=one, reason="customer request"), released, at(0, 10))
    day.shipped(released, {a: 1}, at(0, 15), date(2026, 11, 4))
    day.delivered(released, at(1, 13))
    # 9. allocated in full, a change refused (the warehouse had started), then cancelled whole before it was picked
    day.validated(cancelled, at(0, 15), {a: 1})
    day.allocated(cancelled, {a: 1}, at(0, 15))
    day.change_requested(cancelled, "chg-2", {a: 1}, at(0, 15))
    day.event(ev.OrderChangeRefused(order_id=cancelled, change_id="chg-2", order_version=1, reason="picked"),
              cancelled, at(0, 15))  # fmt: skip
    day.event(ev.OrderCancelled(order_id=cancelled, reason="customer request"), cancelled, at(0, 16))
    # 10. held at 20:00 and still on hold
    day.event(held.model_copy(update={"order_id": on_hold, "external_id": "held-3"}), on_hold, at(0, 20))
    # and one refused at intake
    refusal = ev.OrderRejected(
        order_id=refused, channel=channel, external_id="bad-1", reasons=["unknown SKU"], customer=CUSTOMER
    )
    day.event(refusal, refused, at(0, 16))
    return day


# Worked out by hand from the script above.
# Placed: orders 1-10 (the held ones by when they were held) = 10; delivered 1, 2, 3, 4, 5, 8 = 6;
# cancelled 7 (from hold) and 9 = 2; open 6 and 10 = 2; rejected 1.
# Perfect order over the 6 delivered:
#   on time 5/6 (2 was delivered the 5th, promised the 4th); in full 5/6 (3 shipped 2 of 4 units; 8 shipped the 1
#   unit still owed after the customer cancelled 1; 1 shipped the 2 units its change left of 3);
#   damage-free 5/6 (4); correct documents 5/6 (5, an address exception)
#   APQC: (5/6)^4 = 625/1296 = 0.48225 -> 0.4823;  SCOR: only 1 and 8 meet all four = 2/6 -> 0.3333
# Internal cycle (placed -> packed), hours: 1: 6, 2: 24, 3: 6, 4: 4, 5: 6, 8: 8 -> sorted 4 6 6 6 8 24;
#   p50 = ceil(0.5 x 6) = 3rd = 6 h; p90 = ceil(0.9 x 6) = 6th = 24 h
# Total cycle (placed -> delivered), hours: 1: 50, 2: 75, 3: 54, 4: 24, 5: 48, 8: 30 -> sorted 24 30 48 50 54 75;
#   p50 = 3rd = 48 h; p90 = 6th = 75 h
# First-time fill over the 8 orders allocated (1-6, 8, 9): lines 9 (3 has two), filled 7 (not 3's B, not 6's B)
#   = 0.7778; units ordered 3+1+4+1+1+2+2+1 = 15, reserved 3+1+2+1+1+0+2+1 = 11 -> 0.7333; orders filled 6/8 = 0.75
#   (first time: 1's three units as placed, before its change)
# Backorder rate: backordered lines 2 (3's B, 6's B) / 9 lines = 0.2222
# Return rate: 1 of 6 delivered (4) = 0.1667
# Holds: held 7, 8, 10 = 3; on hold 10 = 1; hold times 7: 4 h, 8: 2 h -> p50 = 1st = 2 h, p90 = 2nd = 4 h
# Cost per order (deploy/config/kpis.json: 0.35 a pick; parcelnet economy to NL, "near": 4.20 up to 1 kg, 5.90 up
#   to 5 kg): 1: 600 g 4.20 + 0.35 = 4.55; 2: 4.55; 3: 800 g 4.20 + 2 x 0.35 = 4.90; 4: 1200 g 5.90 + 0.35 = 6.25;
#   5: 4.55; 8: 4.55 -> 29.35 / 6 = 4.8917 -> 4.89
# Changes: 1's (applied, 10.00 due back and refunded) and 9's (refused) were requested = 2; applied 1, refused 1;
#   orders changed 1
H = 3600.0
EXPECTED = {
    "orders": {"placed": 10, "rejected": 1, "delivered": 6, "cancelled": 2, "open": 2},
    "perfect_order": {
        "orders": 6,
        "components": {"on_time": 0.8333, "in_full": 0.8333, "damage_free": 0.8333, "correct_documents": 0.8333},
        "rate_product_of_components": 0.4823,
        "rate_all_four": 0.3333,
    },
    "cycle_time": {
        "internal": {"orders": 6, "p50_seconds": 6 * H, "p90_seconds": 24 * H},
        "total": {"orders": 6, "p50_seconds": 48 * H, "p90_seconds": 75 * H},
    },
    "fill_rate": {"orders": 8, "line": 0.7778, "unit": 0.7333, "order": 0.75},
    "on_time_delivery": {"orders": 6, "rate": 0.8333, "tolerance_days": 0},
    "backorder_rate": {"lines": 9, "backordered": 2, "rate": 0.2222},
    "return_rate": {"delivered": 6, "returned": 1, "rate": 0.1667},
    "holds": {"held": 3, "on_hold": 1, "hold_time": {"orders": 2, "p50_seconds": 2 * H, "p90_seconds": 4 * H}},
    "changes": {
        "requested": 2,
        "applied": 1,
        "refused": 1,
        "orders_changed": 1,
        "due_back": {"EUR": "10.00"},
        "refunded": {"EUR": "10.00"},
    },
    "cost_per_order": {"orders": 6, "unpriced": 0, "amount": "4.89"},
}


async def handle(day: Day, through_inbox: bool) -> None:
    """As the consumer does with a batch: claim the event ids (unless replaying past the inbox), prepare the batch
    (its orders noted for the gauges), then each handler with its records, in one transaction."""
    settings = KpiSettings()
    handlers = KpiHandlers(settings.rules())
    routes = handlers.routes()
    conn = await connect(settings)
    try:
        async with conn.transaction():
            records = day.records
            if through_inbox:
                fresh = await inbox.claim(conn, [r.envelope.event_id for r in records])
                records = [r for r in records if r.envelope.event_id in fresh]
            await handlers.prepare(conn, records)
            for handler, taken in [step for group in steps(records, routes) for step in group]:
                await handler(conn, taken)
    finally:
        await conn.close()


def oms_kpi(channel: str) -> dict[str, Any]:
    shown = subprocess.run(
        [str(OMS), "kpi", "--since", "2026-11-02", "--until", "2026-11-03", "--by", "channel", "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(shown.stdout)
    (group,) = [g for g in report["groups"] if g["group"] == channel]
    return {k: v for k, v in group.items() if k != "group"}


@pytest.mark.usefixtures("pipeline")
async def test_oms_kpi_on_a_scripted_day_gives_the_figures_worked_out_by_hand() -> None:
    # given a day of orders of one channel with known outcomes
    channel = f"kpi-{uuid.uuid4().hex[:8]}"
    day = scripted_day(channel)
    # when the KPI service has taken its events
    await handle(day, through_inbox=True)
    # then `oms kpi` reports exactly what was worked out by hand
    assert oms_kpi(channel) == EXPECTED


@pytest.mark.usefixtures("pipeline")
async def test_the_days_events_delivered_again_change_no_figure() -> None:
    # given a scripted day the KPI service has taken
    channel = f"kpi-{uuid.uuid4().hex[:8]}"
    day = scripted_day(channel)
    await handle(day, through_inbox=True)
    # when every event comes again, past the inbox too (as after its retention), and in reverse order
    await handle(day, through_inbox=True)
    day.records.reverse()
    await handle(day, through_inbox=False)
    # then no figure moved
    assert oms_kpi(channel) == EXPECTED


@pytest.mark.usefixtures("pipeline")
async def test_the_report_refuses_a_misspelt_parameter_an_empty_period_and_an_unknown_grouping() -> None:
    async with httpx.AsyncClient(
        base_url=LOCAL.http_url("kpis"), timeout=30, auth=DevelopmentKeys(LOCAL.keys_file)
    ) as http:
        day = {"since": "2026-11-02T00:00:00Z", "until": "2026-11-03T00:00:00Z"}
        assert (await http.get("/v1/kpis", params=day)).status_code == 200
        misspelt = await http.get("/v1/kpis", params={**day, "by_channel": "yes"})
        assert misspelt.status_code == 422
        assert [(e["loc"], e["msg"]) for e in misspelt.json()["detail"]] == [
            (["query", "by_channel"], "Extra inputs are not permitted")
        ]
        empty = await http.get("/v1/kpis", params={"since": day["until"], "until": day["until"]})
        assert empty.status_code == 422
        assert [e["loc"] for e in empty.json()["detail"]] == [["query", "since"]]
        assert (await http.get("/v1/kpis", params={**day, "by": "warehouse"})).status_code == 422
        naive = await http.get("/v1/kpis", params={"since": "2026-11-02T00:00:00"})
        assert naive.status_code == 422  # a moment without its offset could be any of 27 hours
