"""The shared consumer hands each handler all of a batch's records routed to it in one call, in the order read,
and never applies one order's records out of that order, even when they go to different handlers."""

import uuid
from datetime import UTC, datetime

from shared.backbone.consumer import EventConsumer, Routes, steps
from shared.backbone.kafka import Inbound, Origin
from shared.backbone.settings import CommonSettings
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.unit.test_consumer_counts import FakePool


def delivered(order_id: uuid.UUID) -> Inbound[ev.Contract]:
    payload = ev.OrderDelivered(order_id=order_id, delivered_at=datetime.now(UTC))
    return record(payload, order_id)


def refused(order_id: uuid.UUID) -> Inbound[ev.Contract]:
    return record(ev.CancellationRefused(order_id=order_id, reason="packed"), order_id)


def product() -> Inbound[ev.Contract]:
    payload = ev.ProductUpserted(sku=f"SKU-{uuid.uuid4().hex[:6]}", name="x", weight_grams=1, active=True)
    return record(payload, None)


def record(payload: ev.Contract, order_id: uuid.UUID | None) -> Inbound[ev.Contract]:
    topic = topics.topic_of(type(payload)).name
    return Inbound(Origin(topic, 0, 0, None, b"", ()), wrap(payload, order_id=order_id, producer="test"), payload)


class Recorder:
    """Handlers that note each call: (handler, the order ids of its records)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[uuid.UUID | None]]] = []

    def handler(self, name: str):
        async def handle(_conn, msgs) -> None:
            self.calls.append((name, [m.envelope.order_id for m in msgs]))

        handle.__name__ = name
        return handle


def test_records_of_one_handler_come_in_one_call_in_the_order_read_the_same_order_twice_included() -> None:
    # given a batch of deliveries, one order's twice
    a, b = uuid.uuid4(), uuid.uuid4()
    batch = [delivered(a), delivered(b), delivered(a)]
    on_delivered = Recorder().handler("on_delivered")
    # when it is cut into steps
    cut = steps(batch, {ev.OrderDelivered: on_delivered})
    # then one step, one call, in the order read
    assert cut == [[(on_delivered, batch)]]


def test_an_order_whose_records_go_to_two_handlers_gets_them_in_the_order_read() -> None:
    # given order A refused then delivered, with order B's delivery read before both (so the delivered handler's
    # call would come first in one step)
    a, b = uuid.uuid4(), uuid.uuid4()
    batch = [delivered(b), refused(a), delivered(a)]
    recorder = Recorder()
    routes: Routes = {
        ev.OrderDelivered: recorder.handler("on_delivered"),
        ev.CancellationRefused: recorder.handler("on_refused"),
    }
    # when it is cut into steps
    cut = steps(batch, routes)
    # then A's delivery is in a later step than its refusal, B's stays in the first
    assert [[[r.envelope.order_id for r in records] for _, records in step] for step in cut] == [[[b], [a]], [[a]]]


def test_records_about_no_order_never_start_a_step_and_unrouted_ones_are_left_out() -> None:
    a = uuid.uuid4()
    products = [product(), product()]
    batch = [products[0], delivered(a), products[1], refused(uuid.uuid4())]
    recorder = Recorder()
    on_product, on_delivered = recorder.handler("on_product"), recorder.handler("on_delivered")
    cut = steps(batch, {ev.ProductUpserted: on_product, ev.OrderDelivered: on_delivered})
    assert cut == [[(on_product, products), (on_delivered, [batch[1]])]]


async def test_the_consumer_runs_each_step_s_handlers_in_turn() -> None:
    # given a consumer with two handlers and a batch where order A is refused, then delivered
    a, b = uuid.uuid4(), uuid.uuid4()
    recorder = Recorder()
    routes: Routes = {
        ev.OrderDelivered: recorder.handler("on_delivered"),
        ev.CancellationRefused: recorder.handler("on_refused"),
    }
    consumer = EventConsumer(CommonSettings(service="unit-steps"), FakePool(), None, routes)  # type: ignore[arg-type]
    # when the batch is applied
    await consumer._apply([delivered(b), refused(a), delivered(a)])
    # then the handlers were called step by step: B's delivery and A's refusal, then A's delivery
    assert recorder.calls == [("on_delivered", [b]), ("on_refused", [a]), ("on_delivered", [a])]
