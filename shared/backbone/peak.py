"""The order path first at a peak: what follows it waits while it is behind.

On two cores an order's way to its pick task (three reads: capture, allocation, fulfillment) costs about a third
of what the whole pipeline spends on it; the rest follows the order (status views, warehouse and carrier reports,
customer mail, returns, KPIs). When every reader shares the CPU, a peak slows the pick tasks down to the pace of
all of it; with what follows paused, the order path alone drained a burst of 6,000 orders at 1,165/s against
421/s and kept up with 500 orders/s for a minute (docs/benchmarks/findings.md, round 15). So while the order path's
consumer groups have a backlog, follow-up consumers pause what can wait (`shared/contracts/topics.waits_at_a_peak`)
and read it once the path has caught up, as Kafka keeps it for them.

`Peak` decides from the backlog alone (pure, below); `OrderPathWatch` keeps it: the lag every Kafka operator
watches (each path group's committed offsets against its topic's end offsets), measured by capture and reported to
every other service's watch. A path behind for longer than a peak lasts is overload, not a peak: the followers then
read on (they would otherwise fall behind without end) until the path has caught up once. When the backlog is not
known, nothing waits.

Orders sent over HTTP wait in capture's own queue before they are written (services/capture/submissions.py), a
backlog no group's lag shows: at 500 orders/s over HTTP the path fell behind there while what follows read on, and
capture refused orders with 503 (306/s taken). Each capture instance's report therefore says how many orders wait
at its intake too, and the backlog is the lag and every instance's count (`PathReports`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.backbone import kafka_access
from shared.backbone.failures import describe
from shared.backbone.kafka import Undecodable, decode, encode, partitions
from shared.backbone.metrics import ORDER_PATH_BACKLOG, YIELDED_TO_THE_ORDER_PATH, YIELDING_TO_THE_ORDER_PATH
from shared.backbone.settings import CommonSettings
from shared.contracts.envelope import wrap
from shared.contracts.events import INSTANCE_NAME_LENGTH, IntakeQueueMeasured
from shared.contracts.topics import INTAKE_QUEUE, ORDER_PATH

log = logging.getLogger(__name__)

# After this many looks without news, what was known is forgotten: a capture instance's report (it sends one every
# look: one that stopped holds nothing back for long), and the backlog itself (a wait ends when it is not known for
# this long).
STALE_AFTER_LOOKS = 4
# The path's usual backlog is the lowest of the latest this many looks while nothing waited (10 s at the default
# look): enough to catch one between a service's batches, few enough to follow the rate as it changes.
USUAL_LOOKS = 20
# A wait ends too once this many looks found the backlog steady, the low mark or more under the high one (2 s at
# the default look).
STEADY_LOOKS = 4
# A wait that begins within this many looks of a steady end (10 s at the default look) is not ended by the next
# steady one: what follows, reading on, put the path behind again.
RETEST_LOOKS = 20
# How long the path topics' partitions, once looked up, are taken as they were (seconds).
PARTITIONS_FOUND_FOR = 60.0


@dataclass
class Peak:
    """Whether what follows the order path waits, from the path's backlog (records its groups have still to read).

    The marks count from what the path usually carries: a path that keeps pace has records in hand (those in its
    batches and lingers, not yet committed), about 1.6 records per order a second (40 at 27 orders/s, 300-400 at
    200/s on this machine: docs/benchmarks/findings.md, round 27), and absolute marks held what follows for the
    rest of a steady 200/s minute after any hiccup, as the backlog never came down to 100. The usual backlog is the
    lowest of the latest `usual_looks` looks while nothing waited (none, or 0 looks: marks counted from 0), and at
    most `high`, so that a backlog that keeps growing counts as behind once it passed twice the high mark.

    It waits from `high` records over the usual on until the backlog is down to `low` over what was usual when the
    wait began (hysteresis: a backlog hovering around one mark would otherwise flip it at every look), or has held
    within `low` of itself, and `low` or more under `high`, for the wait's latest `steady_looks` looks (when the
    rate rose with the peak, as a steady minute's first seconds do, the usual before it was lower than what the path
    now carries keeping pace, and those looks are the usual from then on: otherwise what follows, catching up the
    seconds it waited, passed the high mark over the idle usual and waited again, round 29), for at most `longest`
    seconds in a row; past that the path is overloaded rather than at a peak, and nothing waits again
    until the backlog was down to `low` over the usual. A steady end is put to the test: a wait that begins within
    `retest` seconds of one ends only once the path caught up (down to `low` over the usual) or after the longest
    wait, since what follows, reading on, put the path behind again. Ending
    each wait at its steady looks let what follows catch up in bursts at HTTP's 400/s, the path behind after each
    (p99 to pick task 1.94-2.18 s against 1.29-1.42 s with one wait, round 28). A backlog unknown for longer than
    `patience` seconds ends a wait (fail open); a look that failed once, as one may when the broker is slow at a
    peak, changes nothing (it once let every follower read on in the middle of a 600/s minute)."""

    high: int
    low: int
    longest: float
    patience: float = 0.0
    usual_looks: int = 0
    steady_looks: int = 0
    retest: float = 0.0
    since: float | None = None  # when the wait began
    ended_steady: float | None = None  # when the latest wait ended because the backlog held steady
    spent: bool = False  # waited its longest; not again until the path caught up
    known_at: float | None = None  # when the backlog was last known
    usual_then: int = 0  # the usual backlog when the wait began (or the path was found overloaded)
    seen: deque[int] = field(init=False)  # the backlog at the latest looks while nothing waited
    lately: deque[int] = field(init=False)  # the backlog at the latest looks of a wait

    def __post_init__(self) -> None:
        self.seen, self.lately = deque(maxlen=self.usual_looks), deque(maxlen=self.steady_looks)

    @property
    def waiting(self) -> bool:
        return self.since is not None

    @property
    def firm(self) -> bool:
        """Whether this wait began within `retest` seconds of a steady end: only catching up ends it."""
        return (
            self.since is not None and self.ended_steady is not None and self.since - self.ended_steady <= self.retest
        )

    def look(self, backlog: int | None, now: float) -> bool:
        """Whether to wait, given the backlog now (None: unknown)."""
        if self.high <= 0:
            return False
        if backlog is None:
            if self.known_at is None or now - self.known_at > self.patience:
                self.since = None
            return self.waiting
        self.known_at = now
        calm = not (self.waiting or self.spent)
        usual = self.usual if calm else self.usual_then
        if self.waiting:
            self.lately.append(backlog)
        if backlog <= usual + self.low:
            self.since, self.spent, self.ended_steady = None, False, None
        elif self.waiting and not self.firm and self._steady_again():
            # The path keeps pace at a rate the usual had not seen: what it now carries is the usual.
            self.since, self.ended_steady = None, now
            self.seen.clear()
            self.seen.extend(self.lately)
        elif self.since is not None and now - self.since >= self.longest:
            behind = now - self.since
            log.warning("order path behind for %.0f s (backlog %d): what follows it reads on", behind, backlog)
            self.since, self.spent, self.ended_steady = None, True, None
        elif self.since is None and backlog >= usual + self.high and not self.spent:
            self.since, self.usual_then = now, usual
            self.lately.clear()
        if calm and not self.waiting:
            self.seen.append(backlog)
        return self.waiting

    def _steady_again(self) -> bool:
        """Whether a wait's latest looks (this one the last) found the path keeping pace at a rate the usual backlog
        had not seen, as when the rate rose with the peak: a backlog steady within `low`, at least `low` under `high`. A
        path that keeps pace only just, steady nearer the high mark than that, is at a peak (here it carried 310-377
        at a steady 200/s, and 626-763 at Kafka's 400/s with what follows waiting, round 30)."""
        lately = self.lately
        return (
            bool(self.steady_looks)
            and len(lately) == self.steady_looks
            and max(lately) - min(lately) <= self.low
            and max(lately) <= self.high - self.low
        )

    @property
    def usual(self) -> int:
        """The backlog the path carries while it keeps pace: the lowest of the latest calm looks, at most `high`."""
        return min(min(self.seen, default=0), self.high)


class OrderPathWatch:
    """Keeps `waiting` for follow-up consumers from the order path's backlog, looked at every `peak_look_seconds`.

    Capture measures (`announce`, the producer it sends with): its watch reads the path groups' lag from the broker
    and what arrives on their topics (`_measure`), adds the orders waiting at every capture instance's HTTP intake,
    and says what it measured on `INTAKE_QUEUE` at every look. Every other service's watch reads those reports alone.
    The backlog is the same for every service, and six services each asking the broker for three groups' offsets
    twice a second cost the idle stack a quarter of its CPU (docs/benchmarks/findings.md, round 24); it also needs
    the groups' offsets granted to capture alone. With no fresh report (capture stopped, or the broker away) the
    backlog is unknown and, after the patience, nothing waits."""

    def __init__(
        self,
        settings: CommonSettings,
        announce: Callable[[], AIOKafkaProducer] | None = None,
        waiting_at_intake: Callable[[], int] = lambda: 0,
    ) -> None:
        self.settings = settings
        self.announce = announce
        self.waiting_at_intake = waiting_at_intake
        self.instance = f"{settings.service}-{settings.instance}"[:INSTANCE_NAME_LENGTH]
        self.timeout = max(1.0, settings.peak_look_seconds)  # for one look
        self.peak = Peak(
            settings.peak_backlog_high,
            settings.peak_backlog_low,
            settings.peak_longest_wait_seconds,
            patience=STALE_AFTER_LOOKS * (settings.peak_look_seconds + self.timeout),
            usual_looks=USUAL_LOOKS,
            steady_looks=STEADY_LOOKS,
            retest=RETEST_LOOKS * settings.peak_look_seconds,
        )
        self.reports = PathReports(fresh_seconds=STALE_AFTER_LOOKS * settings.peak_look_seconds)
        self.coordinators: dict[str, int] = {}  # each path group's coordinator, as last found
        self.partitions: list[TopicPartition] = []  # the path topics' partitions, as last found
        self.partitions_found = -math.inf  # when (monotonic)
        self.last_measured: tuple[Unread, float] | None = None  # the latest measurement, and when (monotonic)
        self.committed: dict[tuple[str, TopicPartition], int] = {}  # each path group's commits, as last listed
        self.caught_up = asyncio.Event()  # set while nothing waits: what else puts work off awaits it
        self.updated = time.monotonic()  # when `waiting` was last decided
        self.caught_up.set()

    @property
    def waiting(self) -> bool:
        return self.peak.waiting

    @property
    def measures(self) -> bool:
        return self.announce is not None

    async def run(self) -> None:
        clients: Clients | None = None
        try:
            while True:
                pause = True
                try:
                    access = kafka_access.of_service(self.settings)
                    clients = clients or await Clients.started(access, self.timeout, measuring=self.measures)
                    await self.look(clients)
                    pause = self.measures  # a watch that reads reports waited for the next one in its look
                except Exception as exc:
                    log.debug("the order path's backlog is not known (%s)", describe(exc))
                self._update(self.reports.backlog(time.monotonic()))
                if pause:
                    await asyncio.sleep(self.settings.peak_look_seconds)
        finally:
            self._update(None)
            if clients is not None:
                await clients.close()

    async def look(self, clients: Clients) -> None:
        """Where this watch measures: the reports sent since the last look, then its own measurement, reported.
        Elsewhere: the reports, waiting up to a look's time for the next one, so that a wait begins as soon as
        capture says so rather than at this watch's next look (a burst drains in seconds)."""
        max_bytes = self.settings.kafka_max_record_bytes
        if self.announce is None or clients.admin is None or clients.offsets is None:
            await read_reports(clients.reports, self.reports, max_bytes, wait=self.settings.peak_look_seconds)
            return
        await read_reports(clients.reports, self.reports, max_bytes)
        try:
            unread = await asyncio.wait_for(self._measure(clients.admin, clients.offsets), self.timeout)
        except BaseException:
            self.coordinators.clear()  # one may have moved: found again at the next look
            self.partitions.clear()
            raise
        if unread is None:
            return  # reported from the next look on, with the pace
        measured = IntakeQueueMeasured(instance=self.instance, waiting=self.waiting_at_intake(), unread=unread)
        self.reports.measured(measured, time.monotonic())
        await asyncio.wait_for(
            self.announce().send_and_wait(INTAKE_QUEUE.name, encode(wrap(measured)), key=self.instance.encode()),
            self.timeout,
        )

    async def _measure(self, admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer) -> int | None:
        """The records the path's groups have to read by the next look: those unread now, and those that arrive
        meanwhile at the pace they arrived since the last look (None at a first look, or when the partitions
        counted changed: no pace to go by). A path keeps pace when it reads what arrives, not when a moment finds
        little unread: with what follows waiting the path had under 100 records unread at 400 orders/s, the low
        mark, so the wait ended, what follows caught up at once and the path fell behind again, every few seconds
        (round 30). The path topics' partitions are looked up again once a minute (a topic may be given more)."""
        if not self.partitions or time.monotonic() - self.partitions_found >= PARTITIONS_FOUND_FOR:
            self.partitions = await partitions(admin, [topic.name for topic in ORDER_PATH.values()])
            self.partitions_found = time.monotonic()
        measured = await order_path_backlog(admin, offsets, self.coordinators, self.partitions, self.committed)
        now = time.monotonic()
        before, self.last_measured = self.last_measured, (measured, now)
        if before is None or before[0].partitions != measured.partitions or now <= before[1]:
            return None
        pace = max(0, measured.written - before[0].written) / (now - before[1])
        return measured.records + round(pace * self.settings.peak_look_seconds)

    def _update(self, backlog: int | None) -> None:
        was, now, service = self.peak.waiting, time.monotonic(), self.settings.service
        # Counted at every look, 0 while nothing waits, so the series exists (and rates to 0) from the first one.
        YIELDED_TO_THE_ORDER_PATH.labels(service).inc(now - self.updated if was else 0.0)
        self.updated = now
        if self.peak.look(backlog, now) != was:
            now_it = "reads on" if was else "waits until the path catches up" if self.peak.firm else "waits"
            log.info("order path backlog %s (usual %d): what follows it %s", backlog, self.peak.usual_then, now_it)
        if backlog is not None:
            ORDER_PATH_BACKLOG.labels(service).set(backlog)
        YIELDING_TO_THE_ORDER_PATH.labels(service).set(int(self.waiting))
        if self.waiting:
            self.caught_up.clear()
        else:
            self.caught_up.set()


@dataclass(frozen=True)
class Unread:
    """What consumer groups have still to read on their topics, and how far those topics' partitions reach (their end
    offsets, summed: every record written to them so far)."""

    records: int
    written: int
    partitions: frozenset[TopicPartition]  # those counted


async def order_path_backlog(
    admin: AIOKafkaAdminClient,
    offsets: AIOKafkaConsumer,
    coordinators: dict[str, int] | None = None,
    topic_partitions: Collection[TopicPartition] | None = None,
    seen: dict[tuple[str, TopicPartition], int] | None = None,
) -> Unread:
    """What the order path's groups have still to read on their topics (`topic_partitions`, `seen`: see `unread`)."""
    groups = {kafka_access.consumer_group(r): {t.name} for r, t in ORDER_PATH.items()}
    return await unread(admin, offsets, groups, coordinators, topic_partitions, seen)


async def unread(
    admin: AIOKafkaAdminClient,
    offsets: AIOKafkaConsumer,
    groups: Mapping[str, Collection[str]],
    coordinators: dict[str, int] | None = None,
    topic_partitions: Collection[TopicPartition] | None = None,
    seen: dict[tuple[str, TopicPartition], int] | None = None,
) -> Unread:
    """Records the groups have still to read on the topics given for each: end offsets less committed ones, summed.
    A partition a group never committed on counts from its start when it is among `topic_partitions` (the groups
    read such a partition from its start, `auto_offset_reset="earliest"`: without it a new stack's first peak passed
    unseen, round 30), and is left out otherwise. A commit kept in `seen` (when given) stands for one the broker does
    not list for a moment (a group's commit does not go away; a coordinator that moved, or is loading the offsets
    after a restart, may answer without it): one look of a chaos run reported 8,417 records, most of what the path
    topics held, and the next 49. Each group's coordinator is looked up once into `coordinators` (when given) rather
    than before every fetch of its offsets."""
    committed: dict[tuple[str, TopicPartition], int] = {}
    for group, names in groups.items():
        coordinator = None
        if coordinators is not None:
            if group not in coordinators:
                coordinators[group] = await admin.find_coordinator(group)
            coordinator = coordinators[group]
        found = await admin.list_consumer_group_offsets(group, group_coordinator_id=coordinator)
        committed.update({(group, tp): m.offset for tp, m in found.items() if tp.topic in names and m.offset >= 0})
    if seen is not None:
        seen.update(committed)
        committed = dict(seen)
    never = {
        (group, tp)
        for group, names in groups.items()
        for tp in topic_partitions or ()
        if tp.topic in names and (group, tp) not in committed
    }
    counted = frozenset({tp for _, tp in committed} | {tp for _, tp in never})
    if not counted:
        return Unread(0, 0, counted)
    end: dict[TopicPartition, int] = await offsets.end_offsets(list(counted))
    start: dict[TopicPartition, int] = await offsets.beginning_offsets(list({tp for _, tp in never})) if never else {}
    behind = sum(max(0, end[tp] - offset) for (_, tp), offset in committed.items())
    behind += sum(max(0, end[tp] - start[tp]) for _, tp in never)
    return Unread(behind, sum(end.values()), counted)


@dataclass
class PathReports:
    """The latest report of each capture instance: the orders waiting at its HTTP intake, and the path groups'
    unread records as it last measured them (none from an instance that did not measure), with when it came."""

    fresh_seconds: float
    latest: dict[str, tuple[IntakeQueueMeasured, float]] = field(default_factory=dict)

    def measured(self, report: IntakeQueueMeasured, at: float) -> None:
        self.latest[report.instance] = (report, at)

    def backlog(self, now: float) -> int | None:
        """The path groups' unread records (the highest fresh measurement: the instances measure the same groups)
        and the orders waiting at every instance whose report is fresh; None without a fresh measurement. Stale
        reports are forgotten: an instance that stopped holds nothing back for long."""
        self.latest = {i: (r, at) for i, (r, at) in self.latest.items() if now - at <= self.fresh_seconds}
        reports = [r for r, _ in self.latest.values()]
        measured = [r.unread for r in reports if r.unread is not None]
        if not measured:
            return None
        return max(measured) + sum(r.waiting for r in reports)


async def read_reports(consumer: AIOKafkaConsumer, reports: PathReports, max_bytes: int, wait: float = 0.0) -> None:
    """The reports capture's instances sent since the last read, waiting up to `wait` seconds for one (the consumer
    is assigned `INTAKE_QUEUE`); a record that is not a report is passed over, as the consumers' own decoding says
    (it never raises)."""
    batches = await consumer.getmany(timeout_ms=int(wait * 1000))
    at = time.monotonic()
    for record in (record for batch in batches.values() for record in batch):
        decoded = decode(record, max_bytes)
        if isinstance(decoded, Undecodable):
            log.debug("an order path report not understood (%s)", decoded.reason)
        elif isinstance(measured := decoded.payload, IntakeQueueMeasured):
            reports.measured(measured, at)


@dataclass(frozen=True)
class Clients:
    """The watch's clients: a consumer in no group that reads the reports from their end on, and where the watch
    measures, an admin client for the groups' committed offsets and the topics' partitions, and a consumer in no group
    that reads nothing for the topics' start and end offsets (aiokafka's admin client has no ListOffsets). Asked of the
    reports' consumer, they waited behind its fetch, which the broker holds for up to half a second on one connection:
    each look took that long (round 30)."""

    reports: AIOKafkaConsumer
    admin: AIOKafkaAdminClient | None = None
    offsets: AIOKafkaConsumer | None = None

    @classmethod
    async def started(cls, access: kafka_access.Access, timeout: float, measuring: bool = False) -> Clients:
        """Every client started, or none (a client that failed to start is not started again: new ones are made)."""
        request_timeout_ms = int(timeout * 1000)
        clients = cls(
            access.consumer(request_timeout_ms=request_timeout_ms, enable_auto_commit=False),
            access.admin(request_timeout_ms=request_timeout_ms) if measuring else None,
            access.consumer(request_timeout_ms=request_timeout_ms, enable_auto_commit=False) if measuring else None,
        )
        try:
            for client in (clients.admin, clients.offsets):
                if client is not None:
                    await client.start()
            await clients.reports.start()
            reports = TopicPartition(INTAKE_QUEUE.name, 0)
            clients.reports.assign([reports])
            await clients.reports.seek_to_end(reports)
        except BaseException:
            await clients.close()
            raise
        return clients

    async def close(self) -> None:
        if self.admin is not None:
            with contextlib.suppress(Exception):
                await self.admin.close()
        for consumer in (self.offsets, self.reports):
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await consumer.stop()
