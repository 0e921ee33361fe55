"""The order path first at a peak: what follows it waits while it is behind.

On two cores an order's way to its pick task (three reads: capture, allocation, fulfillment) costs about a third
of what the whole pipeline spends on it; the rest follows the order (status views, warehouse and carrier reports,
customer mail, returns, KPIs). When every reader shares the CPU, a peak slows the pick tasks down to the pace of
all of it; with what follows paused, the order path alone drained a burst of 6,000 orders at 1,165/s against
421/s and kept up with 500 orders/s for a minute (docs/benchmarks/findings.md, round 15). So while the order path's
consumer groups have a backlog, follow-up consumers pause what can wait (`shared/contracts/topics.waits_at_a_peak`)
and read it once the path has caught up, as Kafka keeps it for them.

`Peak` decides from the backlog alone (pure, below); `OrderPathWatch` reads the backlog from the broker: each path
group's committed offsets against its topic's end offsets, the lag every Kafka operator watches. A path behind for
longer than a peak lasts is overload, not a peak: the followers then read on (they would otherwise fall behind
without end) until the path has caught up once. When the backlog cannot be read, nothing waits.

Orders sent over HTTP wait in capture's own queue before they are written (services/capture/submissions.py), a
backlog no group's lag shows: at 500 orders/s over HTTP the path fell behind there while what follows read on, and
capture refused orders with 503 (306/s taken). Capture therefore says how many orders wait at its intake, twice a
second while any do (`IntakeQueueReport`, on `INTAKE_QUEUE`), and each watch adds the latest count of every capture
instance to the lag (`IntakeQueues`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.backbone import kafka_access
from shared.backbone.failures import describe
from shared.backbone.kafka import Undecodable, decode, encode
from shared.backbone.metrics import ORDER_PATH_BACKLOG, YIELDING_TO_THE_ORDER_PATH
from shared.backbone.settings import CommonSettings
from shared.contracts.envelope import wrap
from shared.contracts.events import INSTANCE_NAME_LENGTH, IntakeQueueMeasured
from shared.contracts.topics import INTAKE_QUEUE, ORDER_PATH

log = logging.getLogger(__name__)

# After this many looks without news, what was known is forgotten: a capture instance's count of orders waiting at
# its intake (it sends one every look while any wait, and a last 0: one that stopped, or whose last 0 was lost,
# holds nothing back for long), and the backlog itself (a wait ends when it cannot be read for this long).
STALE_AFTER_LOOKS = 4


@dataclass
class Peak:
    """Whether what follows the order path waits, from the path's backlog (records its groups have still to read).

    It waits from `high` records on until the backlog is down to `low` (hysteresis: a backlog hovering around one
    mark would otherwise flip it at every look), for at most `longest` seconds in a row; past that the path is
    overloaded rather than at a peak, and nothing waits again until the backlog was down to `low`. A backlog unknown
    for longer than `patience` seconds ends a wait (fail open); a look that failed once, as one may when the broker
    is slow at a peak, changes nothing (it once let every follower read on in the middle of a 600/s minute)."""

    high: int
    low: int
    longest: float
    patience: float = 0.0
    since: float | None = None  # when the wait began
    spent: bool = False  # waited its longest; not again until the path caught up
    known_at: float | None = None  # when the backlog was last known

    @property
    def waiting(self) -> bool:
        return self.since is not None

    def look(self, backlog: int | None, now: float) -> bool:
        """Whether to wait, given the backlog now (None: unknown)."""
        if self.high <= 0:
            return False
        if backlog is None:
            if self.known_at is None or now - self.known_at > self.patience:
                self.since = None
            return self.waiting
        self.known_at = now
        if backlog <= self.low:
            self.since, self.spent = None, False
        elif self.since is not None and now - self.since >= self.longest:
            behind = now - self.since
            log.warning("order path behind for %.0f s (backlog %d): what follows it reads on", behind, backlog)
            self.since, self.spent = None, True
        elif self.since is None and backlog >= self.high and not self.spent:
            self.since = now
        return self.waiting


class OrderPathWatch:
    """Looks at the order path's backlog every `peak_look_seconds` and keeps `waiting` for follow-up consumers."""

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self.timeout = max(1.0, settings.peak_look_seconds)  # for one look
        self.peak = Peak(
            settings.peak_backlog_high,
            settings.peak_backlog_low,
            settings.peak_longest_wait_seconds,
            patience=STALE_AFTER_LOOKS * (settings.peak_look_seconds + self.timeout),
        )
        self.intake_queues = IntakeQueues(fresh_seconds=STALE_AFTER_LOOKS * settings.peak_look_seconds)
        self.caught_up = asyncio.Event()  # set while nothing waits: what else puts work off awaits it
        self.caught_up.set()

    @property
    def waiting(self) -> bool:
        return self.peak.waiting

    async def run(self) -> None:
        clients: Clients | None = None
        try:
            while True:
                backlog = None
                try:
                    clients = clients or await Clients.started(kafka_access.of_service(self.settings), self.timeout)
                    backlog = await asyncio.wait_for(order_path_backlog(clients.admin, clients.ends), self.timeout)
                    backlog += await self._waiting_at_intake(clients.ends)
                except Exception as exc:
                    log.debug("the order path's backlog is not known (%s)", describe(exc))
                self._update(backlog)
                await asyncio.sleep(self.settings.peak_look_seconds)
        finally:
            self._update(None)
            if clients is not None:
                await clients.close()

    async def _waiting_at_intake(self, ends: AIOKafkaConsumer) -> int:
        await read_intake_counts(ends, self.intake_queues, self.settings.kafka_max_record_bytes)
        return self.intake_queues.waiting(time.monotonic())

    def _update(self, backlog: int | None) -> None:
        was = self.peak.waiting
        if self.peak.look(backlog, time.monotonic()) != was:
            log.info("order path backlog %s: what follows it %s", backlog, "reads on" if was else "waits")
        service = self.settings.service
        if backlog is not None:
            ORDER_PATH_BACKLOG.labels(service).set(backlog)
        YIELDING_TO_THE_ORDER_PATH.labels(service).set(int(self.waiting))
        if self.waiting:
            self.caught_up.clear()
        else:
            self.caught_up.set()


async def order_path_backlog(admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer) -> int:
    """Records the order path's groups have still to read on their topics."""
    return await unread(admin, ends, {kafka_access.consumer_group(r): {t.name} for r, t in ORDER_PATH.items()})


async def unread(admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer, groups: Mapping[str, Collection[str]]) -> int:
    """Records the groups have still to read on the topics given for each: end offsets less committed ones, summed.
    Partitions a group never committed on are left out."""
    committed: dict[tuple[str, TopicPartition], int] = {}
    for group, names in groups.items():
        offsets = await admin.list_consumer_group_offsets(group)
        committed.update({(group, tp): m.offset for tp, m in offsets.items() if tp.topic in names})
    if not committed:
        return 0
    end = await ends.end_offsets(list({tp for _, tp in committed}))
    return sum(max(0, end[tp] - offset) for (_, tp), offset in committed.items() if offset >= 0)


@dataclass
class IntakeQueues:
    """The latest count of orders waiting at each capture instance's HTTP intake, with when it came."""

    fresh_seconds: float
    latest: dict[str, tuple[int, float]] = field(default_factory=dict)

    def measured(self, instance: str, waiting: int, at: float) -> None:
        self.latest[instance] = (waiting, at)

    def waiting(self, now: float) -> int:
        """Orders waiting at every instance whose count is fresh; stale counts are forgotten."""
        self.latest = {i: (n, at) for i, (n, at) in self.latest.items() if now - at <= self.fresh_seconds}
        return sum(n for n, _ in self.latest.values())


async def read_intake_counts(ends: AIOKafkaConsumer, queues: IntakeQueues, max_bytes: int) -> None:
    """The counts capture's instances sent since the last read (the consumer is assigned `INTAKE_QUEUE`); a record
    that is not a count is passed over, as the consumers' own decoding says (it never raises)."""
    batches = await ends.getmany(timeout_ms=0)
    at = time.monotonic()
    for record in (record for batch in batches.values() for record in batch):
        decoded = decode(record, max_bytes)
        if isinstance(decoded, Undecodable):
            log.debug("an intake queue record not understood (%s)", decoded.reason)
        elif isinstance(measured := decoded.payload, IntakeQueueMeasured):
            queues.measured(measured.instance, measured.waiting, at)


class IntakeQueueReport:
    """Capture's side: sends how many orders wait at this instance's HTTP intake every `peak_look_seconds` while
    any do, and a last 0 when none do. Straight to the broker, not through the outbox: it is a measurement that is
    stale a second later, and one that is lost only means nothing waits for it (the watch forgets it)."""

    def __init__(self, settings: CommonSettings, producer: Callable[[], AIOKafkaProducer], waiting: Callable[[], int]):
        self.settings = settings
        self.producer = producer  # the runtime's, looked up when used: it exists once the service has started
        self.waiting = waiting
        self.instance = f"{settings.service}-{settings.instance}"[:INSTANCE_NAME_LENGTH]

    async def run(self) -> None:
        sent = 0
        while True:
            await asyncio.sleep(self.settings.peak_look_seconds)
            waiting = self.waiting()
            if waiting == 0 and sent == 0:
                continue
            try:
                measured = encode(wrap(IntakeQueueMeasured(instance=self.instance, waiting=waiting)))
                await asyncio.wait_for(
                    self.producer().send_and_wait(INTAKE_QUEUE.name, measured, key=self.instance.encode()),
                    self.settings.kafka_send_timeout_seconds,
                )
                sent = waiting
            except Exception as exc:  # the broker away: the watches forget the last count; the next look sends again
                log.debug("the intake queue's count was not sent (%s)", describe(exc))


@dataclass(frozen=True)
class Clients:
    """The watch's two clients: an admin client for the groups' committed offsets, and a consumer in no group for
    the topics' end offsets (aiokafka's admin client has no ListOffsets) that also reads the intake queue's counts
    from their end on."""

    admin: AIOKafkaAdminClient
    ends: AIOKafkaConsumer

    @classmethod
    async def started(cls, access: kafka_access.Access, timeout: float) -> Clients:
        """Both started, or neither (a client that failed to start is not started again: new ones are made)."""
        clients = cls(
            access.admin(request_timeout_ms=int(timeout * 1000)),
            access.consumer(request_timeout_ms=int(timeout * 1000), enable_auto_commit=False),
        )
        try:
            await clients.admin.start()
            await clients.ends.start()
            counts = TopicPartition(INTAKE_QUEUE.name, 0)
            clients.ends.assign([counts])
            await clients.ends.seek_to_end(counts)
        except BaseException:
            await clients.close()
            raise
        return clients

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.admin.close()
        with contextlib.suppress(Exception):
            await self.ends.stop()
