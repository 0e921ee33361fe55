"""What the benchmark watches while orders flow: when each order was validated and allocated, when its pick task
left for its warehouse and when the order was delivered (read off Kafka as the warehouses and downstream systems
see them), which order id capture gave each external id, what the services have still to read, dead letters,
messages sent, and PostgreSQL commits and WAL.

Pick task time is the timestamp of the PickTaskReleased record on oms.warehouse.pick-tasks. The record's
timestamp is set by fulfillment's outbox relay when it hands the task to Kafka, after the handler's
transaction committed: it is when the warehouse can have it. `pick_tasks.created_at` is taken by the
handler before its transaction commits, so it would leave out the commit and the relay, the last hop
before the warehouse; the time this observer reads the record would add its own lag on a saturated machine.
Delivered is the timestamp of the OrderDelivered record on oms.fulfillment.events, for the same reasons, and so
are validated and allocated (oms.orders.validated, oms.allocation.events): together they split the time to pick
task into the three hops the order path takes (capture's, allocation's, fulfillment's)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

import asyncpg
import httpx
import orjson
from aiokafka import TopicPartition

from deploy.local import scrape
from deploy.local.settings import LocalStack
from shared.backbone import kafka_access
from shared.backbone.peak import order_path_backlog, unread
from shared.contracts import topics

from . import measures

PICK_TASK_RELEASED = "PickTaskReleased"
ORDER_DELIVERED = "OrderDelivered"
ORDER_VALIDATED = "OrderValidated"
ORDER_ALLOCATED = "OrderAllocated"
# Every order the benchmark sends is shipped whole: confirmed, shipped, delivered.
MESSAGES_PER_ORDER = 3
# How often the observer looks whether the order path has read all it was sent, and for how long at most.
PATH_LOOK_SECONDS = 0.2
PATH_PATIENCE_SECONDS = 60.0


class Observer:
    """Reads pick tasks and fulfillment events from where the topics end when it starts, without a consumer
    group (it commits nothing and takes no partition from anyone), as the `admin` principal."""

    def __init__(self, local: LocalStack) -> None:
        self.consumer = local.access().consumer(enable_auto_commit=False)
        self.admin = local.access().admin(request_timeout_ms=10000)
        # Offsets asked of a consumer that reads nothing: the reading one's requests wait behind its fetch, which
        # the broker holds for up to half a second (shared/backbone/peak.Clients).
        self.offsets = local.access().consumer(enable_auto_commit=False)
        self.pick_tasks: dict[str, float] = {}  # order id -> time its last pick task was released (epoch s)
        self.delivered: dict[str, float] = {}  # order id -> time OrderDelivered was published (epoch s)
        # The hops on the way to the pick task: when capture published the order's OrderValidated, and allocation
        # its first OrderAllocated (an order allocated in parts is on its way from the first).
        self.validated: dict[str, float] = {}
        self.allocated: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None
        self.watched: list[TopicPartition] = []
        self.dead_letter_partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self.consumer.start()
        await self.offsets.start()
        await self.admin.start()
        for topic in (topics.ORDERS_VALIDATED, topics.ALLOCATION_EVENTS, topics.PICK_TASKS, topics.FULFILLMENT_EVENTS):
            self.watched += [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        self.dead_letter_partitions = [
            TopicPartition(t.name, p) for t in topics.DEAD_LETTER_TOPICS for p in range(t.partitions)
        ]
        self.consumer.assign(self.watched)
        await self.consumer.seek_to_end(*self.watched)
        for tp in self.watched:  # resolve the positions now, so nothing published from here on is missed
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._follow())

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Reads nothing inside, nor after it until the order path has read all it was sent (what is published
        meanwhile is read then): the times are the records' own timestamps, so reading them later changes no
        figure, and reading them while orders are on their way to their pick tasks would take the observer's
        decoding and the broker's answers to its fetches from the machine under test. Read as soon as the sending
        ended, a phase's records (four or more an order) took half a core for a second or two while the last
        second's orders were still on their way: 75 of a 200/s step's 120 slowest orders came from its last
        second (docs/benchmarks/findings.md, round 36)."""
        self.consumer.pause(*self.watched)
        try:
            yield
            await self.path_read()
        finally:
            self.consumer.resume(*self.watched)

    async def path_read(self) -> None:
        """Until the order path's consumer groups have nothing left to read, twice in a row a look apart (a
        service's relay publishes just after the batch's offsets are committed), or for PATH_PATIENCE_SECONDS (a
        saturated step)."""
        deadline = time.monotonic() + PATH_PATIENCE_SECONDS
        coordinators: dict[str, int] = {}  # each group's, looked up once rather than at every look
        clear = 0
        while clear < 2 and time.monotonic() < deadline:
            backlog = await order_path_backlog(self.admin, self.offsets, coordinators)
            clear = clear + 1 if backlog.records == 0 else 0
            await asyncio.sleep(PATH_LOOK_SECONDS)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.consumer.stop()
        await self.offsets.stop()
        await self.admin.close()

    async def _follow(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    self._note(record.value, record.timestamp / 1000)

    def _note(self, value: bytes, at: float) -> None:
        envelope = orjson.loads(value)
        kind, order_id = envelope.get("type"), envelope.get("order_id")
        if kind == PICK_TASK_RELEASED:
            # An order split over warehouses is released when its last pick task is.
            self.pick_tasks[order_id] = max(at, self.pick_tasks.get(order_id, 0.0))
        elif kind == ORDER_DELIVERED:
            self.delivered[order_id] = at
        elif kind in (ORDER_VALIDATED, ORDER_ALLOCATED):
            reached = self.validated if kind == ORDER_VALIDATED else self.allocated
            reached[order_id] = min(at, reached.get(order_id, at))  # the first: the order was on its way from there

    async def unread(self) -> int:
        """Records the services' consumer groups have still to read, on every topic: at a peak what follows the
        order path waits (shared/backbone/peak.py), and KPIs and returns may still be reading a phase's records
        when its orders are delivered and their mail sent."""
        groups = {kafka_access.consumer_group(s): {t.name for t in topics.inputs(s)} for s in topics.SERVICES}
        return (await unread(self.admin, self.offsets, groups)).records

    async def dead_letters(self) -> int:
        """Records written to the dead-letter topics so far."""
        ends = await self.offsets.end_offsets(self.dead_letter_partitions)
        return int(sum(ends.values()))


async def admin_pool(local: LocalStack) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(local.pg_dsn(), password=local.pg_admin_password, min_size=1, max_size=2)
    assert pool is not None
    return pool


async def order_ids(pool: asyncpg.Pool, channel: str, external_ids: Iterable[str]) -> dict[str, str]:
    """external id -> order id, for the orders capture has taken in."""
    rows = await pool.fetch(
        "SELECT external_id, order_id::text FROM capture.orders WHERE channel = $1 AND external_id = ANY($2::text[])",
        channel,
        list(external_ids),
    )
    return {row["external_id"]: row["order_id"] for row in rows}


@dataclass(frozen=True)
class DatabaseWork:
    """What the database has done so far: transactions committed in the oms database, and WAL records and bytes
    written by the whole cluster (the stack's cluster serves nothing else). Statistics lag by up to half a second.
    WAL is the one figure of database work that does not move with the machine's speed."""

    commits: int
    wal_records: int
    wal_bytes: int

    def __sub__(self, earlier: DatabaseWork) -> DatabaseWork:
        return DatabaseWork(
            self.commits - earlier.commits, self.wal_records - earlier.wal_records, self.wal_bytes - earlier.wal_bytes
        )


async def database_work(pool: asyncpg.Pool) -> DatabaseWork:
    row = await pool.fetchrow(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = 'oms') AS commits,"
        " wal_records, wal_bytes::bigint FROM pg_stat_wal"
    )
    assert row is not None
    return DatabaseWork(int(row["commits"]), int(row["wal_records"]), int(row["wal_bytes"]))


async def metrics_of(http: httpx.AsyncClient, bases: list[str]) -> scrape.Samples:
    """The metrics of a service's instances (at these base URLs), together."""
    return scrape.merge(*[scrape.parse((await http.get(f"{base}/metrics")).text) for base in bases])


async def watches(urls: Mapping[str, list[str]]) -> dict[str, scrape.Samples]:
    """Each service's watches so far, its instances (at these base URLs) together: of its event loop
    (`oms_event_loop_held_seconds`) and of the order path (the seconds what follows it waited)."""
    found = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for service, bases in urls.items():
            merged = (await metrics_of(http, bases)).items()
            found[service] = {k: v for k, v in merged if k[0].startswith((measures.LOOP_HELD, measures.YIELDED))}
    return found


async def messages_sent(urls: list[str]) -> int:
    """Customer messages handed to the mail server so far, from the metrics of every notifications instance
    (at these base URLs)."""
    async with httpx.AsyncClient(timeout=10) as http:
        return int(scrape.total(await metrics_of(http, urls), "oms_notifications_sent_total"))
