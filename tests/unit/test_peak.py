"""At a peak the order path goes first: while its groups have a backlog, follow-up consumers pause what can wait,
for at most a set time in a row, and read it again once the path caught up."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from shared.backbone import consumer as consumer_module
from shared.backbone import peak
from shared.backbone.consumer import LAG_REPORTED_EVERY, PAUSED_ENDS_EVERY, EventConsumer, Routes
from shared.backbone.kafka import encode
from shared.backbone.peak import PARTITIONS_FOUND_FOR, Clients, OrderPathWatch, PathReports, Peak
from shared.backbone.settings import CommonSettings
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import Envelope, wrap


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


def test_the_marks_count_from_the_backlog_the_path_usually_carries_while_it_keeps_pace() -> None:
    peak = Peak(high=500, low=100, longest=300, usual_looks=4)
    # At a steady rate the path has records in hand: absolute marks would hold what follows for as long as it lasts.
    assert not any(peak.look(backlog, now) for now, backlog in enumerate([320, 380, 300, 350]))
    assert peak.usual == 300
    assert not peak.look(700, now=4.0)  # a hiccup within the usual: nothing waits
    assert peak.look(800, now=5.0)  # 500 over the usual
    assert peak.look(2000, now=6.0)
    assert peak.look(401, now=7.0)  # looks while waiting do not count as usual
    assert not peak.look(400, now=8.0)  # back to what the path carried before: what follows reads on


def test_the_usual_backlog_is_the_lowest_of_the_latest_looks_and_at_most_the_high_mark() -> None:
    peak = Peak(high=500, low=100, longest=300, usual_looks=2)
    # A backlog growing slower than the high mark per window is followed as usual, up to the high mark.
    assert not any(peak.look(backlog, now) for now, backlog in enumerate([0, 200, 400, 600, 800]))
    assert peak.usual == 500  # the lowest of 600 and 800, capped: a backlog growing without end is not usual
    assert peak.look(1000, now=5.0)


def test_a_path_overloaded_catches_up_to_the_backlog_usual_before_its_wait() -> None:
    peak = Peak(high=500, low=100, longest=300, usual_looks=4)
    for now, backlog in enumerate([300, 320, 310, 330]):
        peak.look(backlog, now)
    assert peak.look(900, now=10.0)
    assert not peak.look(5000, now=310.0)  # overloaded: followers read on
    assert not peak.look(5000, now=320.0)
    assert peak.usual == 300  # looks while overloaded are not usual either
    assert not peak.look(400, now=330.0)  # caught up to what it carried before
    assert peak.look(800, now=331.0)


def test_a_wait_ends_once_the_backlog_holds_steady_under_the_high_mark_at_a_rate_the_usual_had_not_seen() -> None:
    peak = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4)
    assert not peak.look(0, now=0.0)  # idle before a steady minute begins
    assert peak.look(585, now=1.0)  # its first seconds: a hiccup over the usual of an idle path
    assert [peak.look(backlog, now) for now, backlog in enumerate([330, 310, 380, 320], start=2)] == [
        True,
        True,
        True,
        False,  # four looks within 100 of each other, under 500: the path keeps pace at the new rate
    ]


def test_a_path_steady_just_under_the_high_mark_is_still_at_a_peak() -> None:
    # HTTP at 400/s (round 28): with what follows waiting the path alone holds steady at 430-485; reading on at
    # that, what follows catches up in a burst and the path falls behind again.
    peak = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4, retest=10)
    assert not peak.look(0, now=0.0)
    assert peak.look(507, now=1.0)
    assert all(peak.look(backlog, now) for now, backlog in enumerate([579, 471, 469, 471, 470, 459], start=2))
    assert not peak.look(90, now=8.0)


def test_after_a_steady_end_what_follows_waits_only_at_the_high_mark_over_what_the_path_now_carries() -> None:
    # A steady 200/s after an idle warm-up (round 29): a hiccup in the first second, the path steady at about 320
    # with what follows waiting, then what follows catching up the seconds it waited.
    peak = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4, retest=10)
    assert not peak.look(0, now=0.0)
    assert peak.look(510, now=1.0)
    assert [peak.look(backlog, now) for now, backlog in enumerate([320, 330, 310, 320], start=2)][-1] is False
    assert peak.usual == 310  # what the path carries at the new rate
    assert not peak.look(506, now=8.0)  # 500 over the idle usual, not over what the path now carries
    assert peak.look(810, now=9.0)  # what follows, reading on, put the path behind after all
    assert peak.firm


def test_a_wait_soon_after_a_steady_end_lasts_until_the_path_catches_up() -> None:
    peak = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4, retest=10)
    assert not peak.look(0, now=0.0)
    assert peak.look(540, now=1.0)
    assert [peak.look(backlog, now) for now, backlog in enumerate([180, 170, 175, 172], start=2)] == [
        True,
        True,
        True,
        False,  # steady, well under the high mark: what follows reads on
    ]
    assert peak.look(1071, now=8.0)  # behind 2 s later: what follows, reading on, was more than it could carry
    assert peak.firm
    assert all(peak.look(backlog, now) for now, backlog in enumerate([556, 380, 370, 375, 372], start=9))
    assert not peak.look(260, now=14.0)  # caught up: down to the low mark over what it carried at the steady end


def test_a_steady_end_that_held_leaves_the_next_wait_free_to_end_steady() -> None:
    late = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4, retest=10)
    late.look(0, now=0.0)
    late.look(585, now=1.0)
    assert [late.look(b, now) for now, b in enumerate([130, 110, 180, 120], start=2)][-1] is False
    assert late.look(700, now=30.0)  # a hiccup long after: the steady end had held
    assert not late.firm
    assert [late.look(b, now) for now, b in enumerate([330, 310, 380, 320], start=31)] == [True, True, True, False]

    caught_up = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4, retest=10)
    caught_up.look(0, now=0.0)
    caught_up.look(585, now=1.0)
    assert [caught_up.look(b, now) for now, b in enumerate([330, 310, 380, 320], start=2)][-1] is False
    assert not caught_up.look(40, now=6.0)  # back under the usual once what follows caught up
    assert caught_up.look(700, now=7.0)
    assert not caught_up.firm


def test_a_wait_goes_on_while_the_backlog_falls_or_stays_over_the_high_mark() -> None:
    draining = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4)
    assert draining.look(3500, now=0.0)  # a burst
    assert all(draining.look(backlog, now) for now, backlog in enumerate([2800, 2000, 1300, 600, 400], start=1))
    assert not draining.look(90, now=6.0)

    overloaded = Peak(high=500, low=100, longest=300, usual_looks=20, steady_looks=4)
    assert overloaded.look(900, now=0.0)  # a rate the path keeps alone, carrying more than the high mark
    assert all(overloaded.look(backlog, now) for now, backlog in enumerate([640, 620, 660, 650, 640], start=1))


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


def follow_up_consumer() -> EventConsumer:
    return EventConsumer(
        CommonSettings(service="returns"),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        {ev.OrderShipped: handle},
        order_path=False,
        watch=Watch(),  # type: ignore[arg-type]
    )


async def report_lag(consumer: EventConsumer, client: Client) -> None:
    """The lag reported after a poll, once the ends it asked of the broker beside the loop came back."""
    await consumer._report_lag(client)
    if consumer._asking_paused_ends is not None:
        await consumer._asking_paused_ends
    await consumer._report_lag(client)


async def test_a_waiting_partitions_lag_shows_the_backlog_the_wait_builds() -> None:
    # given a follow-up consumer that read a partition to its end
    consumer = follow_up_consumer()
    shipped = TopicPartition(topics.FULFILLMENT_EVENTS.name, 0)
    client = Client(shipped)
    client.fetched_to[shipped] = client.positions[shipped] = client.ends[shipped] = 100
    await report_lag(consumer, client)
    assert lag(shipped) == 0 and client.asked == 0  # read as it comes: the fetches say where it ends
    # when it waits at a peak, nothing of it is fetched while the topic grows
    client.pause(shipped)
    client.ends[shipped] = 600
    await report_lag(consumer, client)
    # then its lag is the backlog, from the end the broker gives, asked at most once a look
    assert lag(shipped) == 500 and client.asked == 1
    client.ends[shipped] = 900
    await report_lag(consumer, client)
    assert lag(shipped) == 500 and client.asked == 1
    consumer._paused_ends_at -= PAUSED_ENDS_EVERY  # a look later
    await report_lag(consumer, client)
    assert lag(shipped) == 800 and client.asked == 2
    # and a broker that does not answer leaves the last end known, and the loop going
    client.broker_away, client.ends[shipped] = True, 1000
    consumer._paused_ends_at -= PAUSED_ENDS_EVERY
    await report_lag(consumer, client)
    assert lag(shipped) == 800 and client.asked == 3
    # once it reads again, its own fetches say where it ends
    client.resume(shipped)
    client.fetched_to[shipped] = 1000
    await report_lag(consumer, client)
    assert lag(shipped) == 900 and client.asked == 3


class Polled(Client):
    """A client whose polls bring nothing."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int = 0
    ) -> dict[TopicPartition, list[Any]]:
        return {}


async def test_the_lag_is_brought_up_to_date_at_most_once_a_second_whatever_the_polls(monkeypatch) -> None:
    # the consumer's clock given, so that a slow machine cannot stretch "within the second"
    now = [1000.0]
    monkeypatch.setattr(consumer_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    # given a consumer whose first step reported a partition's lag
    consumer = follow_up_consumer()
    shipped = TopicPartition(topics.FULFILLMENT_EVENTS.name, 2)
    client = Polled(shipped)
    client.fetched_to[shipped], client.positions[shipped] = 100, 90
    await consumer._step(client)
    assert lag(shipped) == 10
    # when the partition moves on and polls follow within the second
    client.fetched_to[shipped] = 150
    for _ in range(3):
        now[0] += LAG_REPORTED_EVERY / 4
        await consumer._step(client)
    # then the gauge still says what it said, until the second is over
    assert lag(shipped) == 10
    now[0] += LAG_REPORTED_EVERY / 4
    await consumer._step(client)
    assert lag(shipped) == 60


async def test_the_ends_of_waiting_partitions_are_asked_beside_the_loop_which_goes_on_meanwhile() -> None:
    # given a follow-up consumer waiting at a peak, whose request for the ends the broker answers only after the
    # fetch it holds for the partitions still read
    consumer = follow_up_consumer()
    shipped = TopicPartition(topics.FULFILLMENT_EVENTS.name, 1)
    client = Client(shipped)
    client.fetched_to[shipped] = client.positions[shipped] = 100
    client.pause(shipped)
    held = asyncio.Event()

    async def answered_after_the_fetch(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        await held.wait()
        return dict.fromkeys(partitions, 700)

    client.end_offsets = answered_after_the_fetch  # type: ignore[method-assign]

    # when the lag is reported after a poll, it does not wait for the answer (awaited, it hangs here)
    await asyncio.wait_for(consumer._report_lag(client), timeout=5)
    assert lag(shipped) == 0  # the end its last fetch saw, until the broker answers
    # and once the broker answers, the next report shows the backlog
    held.set()
    await report_lag(consumer, client)
    assert lag(shipped) == 600


def test_the_backlog_is_the_unread_records_and_the_orders_waiting_at_every_instance_while_reports_are_fresh() -> None:
    reports = PathReports(fresh_seconds=2.0)
    assert reports.backlog(now=0.0) is None  # nothing measured yet: not known

    reports.measured(ev.IntakeQueueMeasured(instance="capture-1", waiting=400, unread=900), at=10.0)
    reports.measured(ev.IntakeQueueMeasured(instance="capture-2", waiting=300, unread=1000), at=10.5)
    assert reports.backlog(now=11.0) == 1000 + 400 + 300  # both measured the same groups: the later lag counts once

    reports.measured(ev.IntakeQueueMeasured(instance="capture-1", waiting=50, unread=200), at=11.5)  # replaces
    assert reports.backlog(now=12.0) == 1000 + 50 + 300

    assert reports.backlog(now=13.0) == 200 + 50  # capture-2 sent nothing for 2.5 s: stopped, or its reports lost
    reports.measured(ev.IntakeQueueMeasured(instance="capture-3", waiting=70), at=13.0)  # counted, measured nothing
    assert reports.backlog(now=13.4) == 200 + 50 + 70
    assert reports.backlog(now=14.0) is None  # no fresh measurement: not known, whatever waits at an intake


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, key, value))


class Broker:
    """The watch's clients on one broker: the path groups' committed offsets and coordinators, the path topics'
    partitions (admin), the topics' start and end offsets and the reports on the intake queue's topic (the consumer in
    no group). Each group committed on partition 0 of its topic, which has `partitions` partitions; every partition
    starts at `start` and ends at `end`."""

    def __init__(self, committed: dict[str, int], end: int, partitions: int = 1, start: int = 0) -> None:
        self.committed = committed
        self.end = end
        self.partitions = partitions
        self.start = start
        self.asked: list[str] = []
        self.unlisted: set[str] = set()  # groups whose commits the broker leaves out for now
        self.reports: list[ConsumerRecord[bytes, bytes]] = []
        self.waited: list[int] = []  # for the reports, each read (ms)

    async def find_coordinator(self, group: str) -> int:
        self.asked.append(f"coordinator {group}")
        return 0

    async def list_consumer_group_offsets(self, group: str, group_coordinator_id: int | None = None) -> dict[Any, Any]:
        self.asked.append(f"offsets {group}" + ("" if group_coordinator_id is None else f" at {group_coordinator_id}"))
        topic = topics.ORDER_PATH[group.removeprefix("oms-")].name
        return (
            {} if group in self.unlisted else {TopicPartition(topic, 0): OffsetAndMetadata(self.committed[group], "")}
        )

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        self.asked.append("partitions")
        described = [{"partition": p, "error_code": 0} for p in range(self.partitions)]
        return [{"topic": name, "error_code": 0, "partitions": described} for name in names]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked.append("ends")
        return dict.fromkeys(partitions, self.end)

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked.append(f"starts of {len(partitions)}")
        return dict.fromkeys(partitions, self.start)

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.waited.append(timeout_ms)
        sent, self.reports = self.reports, []
        return {TopicPartition(topics.INTAKE_QUEUE.name, 0): sent} if sent else {}

    def report(self, measured: ev.IntakeQueueMeasured) -> None:
        value = encode(wrap(measured))
        offset = len(self.reports)
        self.reports.append(
            ConsumerRecord(topics.INTAKE_QUEUE.name, 0, offset, 0, 0, None, value, None, 0, len(value), ())
        )


async def test_capture_measures_the_path_and_reports_it_with_the_orders_waiting_at_its_intake_at_every_look() -> None:
    broker = Broker({"oms-capture": 900, "oms-allocation": 950, "oms-fulfillment": 1000}, end=1000)
    producer = Producer()
    settings = CommonSettings(service="capture", instance="2")
    watch = OrderPathWatch(settings, lambda: producer, waiting_at_intake=lambda: 30)
    clients = Clients(broker, broker, broker)

    for _ in range(3):
        await watch.look(clients)

    # from its second look on, once the pace records arrive at is known (none arrive here)
    report = ev.IntakeQueueMeasured(instance="capture-2", waiting=30, unread=100 + 50)
    assert [(topic, key, Envelope.model_validate_json(value).decode()) for topic, key, value in producer.sent] == [
        (topics.INTAKE_QUEUE.name, b"capture-2", report)
    ] * 2
    assert watch.reports.backlog(time.monotonic()) == 150 + 30
    groups = ["oms-capture", "oms-allocation", "oms-fulfillment"]
    # each coordinator and the topics' partitions found once, then asked directly
    first_look = (
        ["partitions"] + [step for g in groups for step in (f"coordinator {g}", f"offsets {g} at 0")] + ["ends"]
    )
    later_look = [f"offsets {g} at 0" for g in groups] + ["ends"]
    assert broker.asked == first_look + later_look * 2
    assert broker.waited == [0, 0, 0]  # its looks keep their pace: the reports read as they are


class Clock:
    """The watch's clock, moved by hand (it stands in for the `time` module where the watch reads it)."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


async def test_capture_counts_what_the_path_has_to_read_by_the_next_look_at_the_pace_records_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(peak, "time", clock)
    broker = Broker({"oms-capture": 900, "oms-allocation": 950, "oms-fulfillment": 1000}, end=1000)
    watch = OrderPathWatch(CommonSettings(service="capture"), Producer)
    clients = Clients(broker, broker, broker)
    await watch.look(clients)
    assert watch.reports.backlog(clock.now) is None  # no pace to go by yet: nothing reported

    # when each path topic took 100 records over the half second to the next look
    clock.now += 0.5
    broker.end = 1100
    await watch.look(clients)

    # then what is unread counts with what arrives by the look after, at that pace (600 a second)
    assert watch.reports.backlog(clock.now) == (200 + 150 + 100) + 300
    # and a path that read it all by then, the records arriving as before, is behind by what arrives meanwhile
    clock.now += 0.5
    broker.end, broker.committed = 1200, dict.fromkeys(broker.committed, 1200)
    await watch.look(clients)
    assert watch.reports.backlog(clock.now) == 0 + 300


async def capture_watching(broker: Broker) -> tuple[OrderPathWatch, Clients]:
    """Capture's watch of the broker after its first two looks (it reports from the second, the pace known)."""
    watch = OrderPathWatch(CommonSettings(service="capture"), Producer)
    clients = Clients(broker, broker, broker)
    for _ in range(2):
        await watch.look(clients)
    return watch, clients


async def test_a_partition_the_path_never_committed_on_counts_from_its_start_as_the_groups_read_it() -> None:
    # a new stack's first peak: each group committed on one of its topic's three partitions, the others wait unread
    broker = Broker({"oms-capture": 900, "oms-allocation": 950, "oms-fulfillment": 1000}, end=1000, partitions=3)

    watch, _ = await capture_watching(broker)

    assert watch.reports.backlog(time.monotonic()) == 100 + 50 + 0 + 6 * 1000
    assert broker.asked[-2:] == ["ends", "starts of 6"]


async def test_a_commit_the_broker_leaves_out_for_a_moment_counts_as_last_listed_not_from_the_start() -> None:
    broker = Broker({"oms-capture": 900, "oms-allocation": 950, "oms-fulfillment": 1000}, end=1000, start=0)
    watch, clients = await capture_watching(broker)
    assert watch.reports.backlog(time.monotonic()) == 100 + 50 + 0

    broker.unlisted = {"oms-capture"}  # its coordinator loading the offsets after a restart, say
    await watch.look(clients)

    assert watch.reports.backlog(time.monotonic()) == 100 + 50 + 0  # not 1,000 + 50 + 0


async def test_a_topic_given_more_partitions_is_seen_within_a_minute() -> None:
    broker = Broker({"oms-capture": 1000, "oms-allocation": 1000, "oms-fulfillment": 1000}, end=1000, start=400)
    watch, clients = await capture_watching(broker)
    assert watch.reports.backlog(time.monotonic()) == 0

    broker.partitions = 2  # each path topic given a partition, 600 records on it
    await watch.look(clients)
    assert watch.reports.backlog(time.monotonic()) == 0  # its partitions as found a moment ago
    watch.partitions_found -= PARTITIONS_FOUND_FOR
    await watch.look(clients)  # the partitions counted changed: no pace to go by, nothing reported
    await watch.look(clients)

    assert watch.reports.backlog(time.monotonic()) == 3 * 600
    assert broker.asked.count("partitions") == 2


async def test_every_other_service_reads_capture_s_reports_and_asks_the_broker_nothing() -> None:
    broker = Broker({}, end=0)
    watch = OrderPathWatch(CommonSettings(service="notifications"))
    assert not watch.measures

    broker.report(ev.IntakeQueueMeasured(instance="capture-1", waiting=200, unread=700))
    await watch.look(Clients(broker))

    assert watch.reports.backlog(time.monotonic()) == 900
    assert broker.asked == []
    assert broker.waited == [500]  # up to a look's time for the next report: a wait begins when capture says so


def test_a_look_that_failed_leaves_a_wait_as_it_was_until_the_backlog_is_unknown_for_longer_than_the_patience() -> None:
    peak = Peak(high=500, low=100, longest=300, patience=6)
    assert peak.look(800, now=0.0)
    assert peak.look(None, now=1.5)  # the broker slow to answer at a peak: not news
    assert peak.look(None, now=6.0)
    assert not peak.look(None, now=6.5)  # unknown for longer than the patience: fail open
    assert not peak.look(None, now=7.0)

    assert not Peak(high=500, low=100, longest=300, patience=6).look(None, now=0.0)  # never known: nothing waits


def test_the_watch_counts_the_seconds_what_follows_waited(monkeypatch) -> None:
    clock = iter([100.0, 101.0, 103.5, 110.0, 111.0])
    monkeypatch.setattr("shared.backbone.peak.time.monotonic", lambda: next(clock))
    watch = OrderPathWatch(CommonSettings(service="unit-yielded"))  # its clock starts at 100

    def waited() -> float:
        sample = REGISTRY.get_sample_value("oms_yielded_to_the_order_path_seconds_total", {"service": "unit-yielded"})
        return sample or 0.0

    watch._update(900)  # at 101: the wait begins
    assert watch.waiting and waited() == 0
    watch._update(50)  # at 103.5: caught up
    assert not watch.waiting and waited() == 2.5
    watch._update(50)  # at 110: nothing waited since
    watch._update(900)  # at 111: waits again
    assert waited() == 2.5
