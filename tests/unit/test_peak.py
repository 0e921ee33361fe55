"""At a peak the order path goes first: while its groups have a backlog, follow-up consumers pause what can wait,
for at most a set time in a row, and read it again once the path caught up."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from shared.backbone.consumer import PAUSED_ENDS_EVERY, EventConsumer, Routes
from shared.backbone.peak import IntakeQueueReport, IntakeQueues, Peak
from shared.backbone.settings import CommonSettings
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import Envelope


def test_what_follows_waits_from_the_high_mark_until_the_backlog_is_down_to_the_low_one() -> None:
    peak = Peak(high=1000, low=250, longest=300)

    assert [peak.look(backlog, now) for now, backlog in enumerate([0, 999, 1000, 600, 251, 250, 600])] == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,  # below the high mark again: no wait until it is reached
    ]


def test_a_path_behind_for_longer_than_a_peak_lasts_lets_what_follows_read_on_until_it_caught_up() -> None:
    peak = Peak(high=1000, low=250, longest=300)

    assert peak.look(5000, now=0.0)
    assert peak.look(5000, now=299.0)
    assert not peak.look(5000, now=300.0)  # overloaded, not a peak: followers would fall behind without end
    assert not peak.look(9000, now=400.0)
    assert not peak.look(250, now=500.0)  # caught up once
    assert peak.look(1000, now=600.0)


def test_nothing_waits_when_the_backlog_is_unknown_or_waiting_is_switched_off() -> None:
    peak = Peak(high=1000, low=250, longest=300)
    assert peak.look(5000, now=0.0)
    assert not peak.look(None, now=1.0)  # the broker did not answer: fail open

    assert not Peak(high=0, low=0, longest=300).look(10**6, now=0.0)


def test_the_path_services_hold_back_reports_but_read_commands_stock_and_payments_as_they_come() -> None:
    waits = {t.name for t in topics.inputs("capture") if topics.waits_at_a_peak("capture", t)}
    assert waits == {
        topics.ALLOCATION_EVENTS.name,
        topics.PICK_TASKS.name,
        topics.FULFILLMENT_EVENTS.name,
    }
    assert not topics.waits_at_a_peak("fulfillment", topics.ALLOCATION_EVENTS)  # its own order path
    assert not topics.waits_at_a_peak("fulfillment", topics.ORDER_CANCELLATIONS)
    assert not topics.waits_at_a_peak("allocation", topics.INVENTORY_ADJUSTMENTS)
    assert topics.waits_at_a_peak("fulfillment", topics.WAREHOUSE_EVENTS)


def test_services_that_only_follow_orders_wait_for_all_they_read() -> None:
    for reader in ("notifications", "returns", "kpis"):
        assert all(topics.waits_at_a_peak(reader, t) for t in topics.inputs(reader)), reader


class Watch:
    waiting = False


class Client:
    """The partition state of an aiokafka consumer: what is assigned and what is paused."""

    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.paused_now: set[TopicPartition] = set()
        self.fetched_to: dict[TopicPartition, int] = {}  # each partition's end as its last fetch saw it
        self.positions: dict[TopicPartition, int] = {}
        self.ends: dict[TopicPartition, int] = {}  # as the broker has them now
        self.asked = 0
        self.broker_away = False

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.fetched_to.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        if self.broker_away:
            raise KafkaConnectionError("the broker is away")
        return {tp: self.ends[tp] for tp in partitions}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_now |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_now -= set(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_now)


async def handle(conn: Any, records: list[Any]) -> None:
    return None


def test_a_follow_up_consumer_pauses_what_waits_and_resumes_it_once_the_path_caught_up() -> None:
    watch = Watch()
    routes: Routes = {ev.OrderAllocated: handle, ev.CancelRequested: handle}
    consumer = EventConsumer(
        CommonSettings(service="capture"),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        routes,
        order_path=False,
        watch=watch,  # type: ignore[arg-type]
    )
    report = TopicPartition(topics.ALLOCATION_EVENTS.name, 0)
    command = TopicPartition(topics.CANCEL_REQUESTS.name, 0)
    client = Client(report, command)

    consumer._give_way(client)
    assert client.paused() == set()

    watch.waiting = True
    consumer._give_way(client)
    assert client.paused() == {report}

    client.assigned.add(TopicPartition(topics.ALLOCATION_EVENTS.name, 1))  # a new assignment comes unpaused
    consumer._give_way(client)
    assert client.paused() == {report, TopicPartition(topics.ALLOCATION_EVENTS.name, 1)}

    watch.waiting = False
    consumer._give_way(client)
    assert client.paused() == set()


def test_the_order_path_consumer_never_waits() -> None:
    watch = Watch()
    watch.waiting = True
    consumer = EventConsumer(
        CommonSettings(service="capture"),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        {ev.SubmittedOrder: handle},
        watch=watch,  # type: ignore[arg-type]
    )
    client = Client(TopicPartition(topics.ORDERS_SUBMITTED.name, 0))

    consumer._give_way(client)

    assert client.paused() == set()


def lag(tp: TopicPartition) -> float | None:
    return REGISTRY.get_sample_value(
        "oms_consumer_lag_messages", {"service": "returns", "topic": tp.topic, "partition": str(tp.partition)}
    )


async def test_a_waiting_partitions_lag_shows_the_backlog_the_wait_builds() -> None:
    # given a follow-up consumer that read a partition to its end
    consumer = EventConsumer(
        CommonSettings(service="returns"),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        {ev.OrderShipped: handle},
        order_path=False,
        watch=Watch(),  # type: ignore[arg-type]
    )
    shipped = TopicPartition(topics.FULFILLMENT_EVENTS.name, 0)
    client = Client(shipped)
    client.fetched_to[shipped] = client.positions[shipped] = client.ends[shipped] = 100
    await consumer._report_lag(client)
    assert lag(shipped) == 0 and client.asked == 0  # read as it comes: the fetches say where it ends
    # when it waits at a peak, nothing of it is fetched while the topic grows
    client.pause(shipped)
    client.ends[shipped] = 600
    await consumer._report_lag(client)
    # then its lag is the backlog, from the end the broker gives, asked at most once a look
    assert lag(shipped) == 500 and client.asked == 1
    client.ends[shipped] = 900
    await consumer._report_lag(client)
    assert lag(shipped) == 500 and client.asked == 1
    consumer._paused_ends_at -= PAUSED_ENDS_EVERY  # a look later
    await consumer._report_lag(client)
    assert lag(shipped) == 800 and client.asked == 2
    # and a broker that does not answer leaves the last end known, and the loop going
    client.broker_away, client.ends[shipped] = True, 1000
    consumer._paused_ends_at -= PAUSED_ENDS_EVERY
    await consumer._report_lag(client)
    assert lag(shipped) == 800 and client.asked == 3
    # once it reads again, its own fetches say where it ends
    client.resume(shipped)
    client.fetched_to[shipped] = 1000
    await consumer._report_lag(client)
    assert lag(shipped) == 900 and client.asked == 3


def test_the_orders_waiting_at_every_capture_instance_count_while_their_counts_are_fresh() -> None:
    queues = IntakeQueues(fresh_seconds=2.0)
    queues.measured("capture-1", 400, at=10.0)
    queues.measured("capture-2", 300, at=10.5)
    assert queues.waiting(now=11.0) == 700

    queues.measured("capture-1", 50, at=11.5)  # the latest count replaces the one before
    assert queues.waiting(now=12.0) == 350

    assert queues.waiting(now=13.0) == 50  # capture-2 sent nothing for 2.5 s: stopped, or its 0 was lost
    assert queues.waiting(now=20.0) == 0


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, key, value))


class LookedAtAll(Exception):
    pass


async def test_capture_reports_the_orders_waiting_at_its_intake_while_any_do_and_a_last_zero() -> None:
    counts = [0, 0, 3, 5, 0, 0, 0, 2]

    def waiting() -> int:
        if not counts:
            raise LookedAtAll
        return counts.pop(0)

    producer = Producer()
    settings = CommonSettings(service="capture", instance="2", peak_look_seconds=0.001)
    with pytest.raises(LookedAtAll):
        await IntakeQueueReport(settings, lambda: producer, waiting).run()

    sent = [(topic, key, Envelope.model_validate_json(value).decode()) for topic, key, value in producer.sent]
    assert [(topic, key) for topic, key, _ in sent] == [(topics.INTAKE_QUEUE.name, b"capture-2")] * 4
    assert [measured for _, _, measured in sent] == [
        ev.IntakeQueueMeasured(instance="capture-2", waiting=n) for n in (3, 5, 0, 2)
    ]


def test_a_look_that_failed_leaves_a_wait_as_it_was_until_the_backlog_is_unknown_for_longer_than_the_patience() -> None:
    peak = Peak(high=500, low=100, longest=300, patience=6)
    assert peak.look(800, now=0.0)
    assert peak.look(None, now=1.5)  # the broker slow to answer at a peak: not news
    assert peak.look(None, now=6.0)
    assert not peak.look(None, now=6.5)  # unknown for longer than the patience: fail open
    assert not peak.look(None, now=7.0)

    assert not Peak(high=500, low=100, longest=300, patience=6).look(None, now=0.0)  # never known: nothing waits
