"""The consuming half of the backbone, the same for every service.

Records are read in batches (a poll, and what arrives within a short linger after it); each batch is
decoded, undecodable records are set aside as dead letters (shared.dlq), the rest are handled in ONE database
transaction together with the claim of their event ids (so a redelivered event changes nothing; a reader whose
writes are idempotent by their own keys claims nothing), and only after that commit are the offsets committed (not
if the group reassigned partitions meanwhile: the instance reads on from the committed offsets instead).
A handler takes all the batch's records routed to it at once (so it can write them with one statement per
table), in the order they were read; one order's records routed to different handlers are handed over in that
order too (see `steps`).

Failures are classified (shared.failures): an unavailable database or broker is waited out with capped
backoff, without end; contention is retried a bounded number of times; a permanent failure, or contention
that persists, splits the batch and dead-letters the record that fails alone. Nothing a record holds can end
the loop: a record the Kafka client itself cannot parse is set aside by its offset, and any other failure of
a step rewinds to the committed offsets and carries on. Metrics of handled records move only once their
transaction commits; each record's ids are bound to the log context while it is handled; after every poll
the lag of each assigned partition is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CorruptRecordException, IllegalStateError, KafkaError

from shared.backbone import aftercommit, inbox, kafka_access, logs
from shared.backbone.db import Conn
from shared.backbone.dlq import DeadLetters
from shared.backbone.failures import Failure, classify, describe, waits_for_a_lock
from shared.backbone.kafka import Inbound, Origin, Undecodable, decode, guard_client
from shared.backbone.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    HANDLER_SECONDS,
    MESSAGES_CONSUMED,
    TRANSIENT_RETRIES,
    UNREADABLE_RECORDS,
    count,
    observe,
)
from shared.backbone.peak import OrderPathWatch
from shared.backbone.settings import CommonSettings
from shared.contracts.events import Contract
from shared.contracts.topics import topic_of, waits_at_a_peak

log = logging.getLogger(__name__)
# Takes records of the event types routed to it, in the order they were read (one order's records may repeat).
Handler = Callable[[Conn, list[Inbound[Any]]], Awaitable[None]]
# What a service does with each event type it reads; it subscribes to the topics that carry them.
Routes = Mapping[type[Contract], Handler]
# One step of a batch: each handler with its records, in the order the handlers' first records were read.
Step = list[tuple[Handler, list[Inbound[Any]]]]
# Runs first in a batch's transaction with the batch's new records, e.g. to take row locks in one global order.
BatchPreparation = Callable[[Conn, list[Inbound[Any]]], Awaitable[None]]
Batches = Mapping[TopicPartition, list[Any]]
# While looking for a record the client cannot parse, polls of one partition before going on to the next
# (so a busy partition cannot hold up the search; if the record was not found, the next poll starts over).
POLLS_PER_PARTITION = 20
# While partitions wait at a peak, how often their ends are asked of the broker for the lag gauge (seconds).
PAUSED_ENDS_EVERY = 1.0
# How often the lag gauge is brought up to date (seconds): a scrape every 15 s reads it, and doing it after every
# poll, a gauge per assigned partition (48 for some follow-up consumers), took 1-10% of a service's samples.
LAG_REPORTED_EVERY = 1.0


def backoff(attempt: int, cap: float = 10.0) -> float:
    """Exponential with jitter, capped: an outage of any length is waited out without hammering."""
    return float(min(cap, 0.05 * 2 ** min(attempt, 16)) * (0.5 + random.random()))


def unreadable(exc: BaseException) -> bool:
    """Whether a failed poll means a record the client could not parse (its header names are decoded as
    strict UTF-8, its CRC checked) rather than the broker being unreachable or refusing."""
    return isinstance(exc, CorruptRecordException) or not isinstance(exc, KafkaError)


class EventConsumer:
    def __init__(
        self,
        settings: CommonSettings,
        pool: asyncpg.Pool,
        dead_letters: DeadLetters,
        routes: Routes,
        prepare: BatchPreparation | None = None,
        idempotent_by_keys: bool = False,
        order_path: bool = True,
        watch: OrderPathWatch | None = None,
    ) -> None:
        self.settings = settings
        # Whether it reads the order's way to its pick task (shared/contracts/topics.ORDER_PATH), or what follows.
        self.order_path = order_path
        self.pacing = settings.pacing(order_path)
        # The handlers' writes are idempotent by their own keys (insert-if-absent, keep the earliest or latest): a
        # redelivered event changes nothing without an inbox claim, so none is written.
        self.idempotent_by_keys = idempotent_by_keys
        self.pool = pool
        self.dead_letters = dead_letters
        self.routes = dict(routes)
        self.topics = sorted({topic_of(payload).name for payload in self.routes})
        # A follow-up consumer's topics that wait while the order path is behind, and what tells it so.
        self.watch = None if order_path else watch
        self._wait_at_a_peak = {
            topic_of(payload).name for payload in self.routes if waits_at_a_peak(settings.service, topic_of(payload))
        }
        self.prepare = prepare
        self.service = settings.service
        self.reassignments = Reassignments()
        self._lag_reported: set[TopicPartition] = set()
        self._lag_reported_at = -math.inf
        self._known_paused_ends: dict[TopicPartition, int] = {}
        self._paused_ends_at = -math.inf
        self._asking_paused_ends: asyncio.Task[None] | None = None
        # The search for an unreadable record reads an empty poll as "nothing there": it must outlast a fetch the
        # broker may hold (a follow-up consumer's, until it has a megabyte or the wait is over), or it gives up.
        self._search_poll_ms = settings.consumer_poll_ms + self.pacing.fetch_wait_ms

    async def run(self) -> None:
        guard_client()  # also when the consumer runs without the service runtime
        consumer = await self._started()
        try:
            failures = 0
            while True:
                try:
                    await self._step(consumer)
                    failures = 0
                except Exception as exc:
                    # Records cannot get here (decoding and handlers are isolated): the broker, or a bug.
                    failures += 1
                    log.exception("consumer step failed (%s); rewinding to the committed offsets", describe(exc))
                    await asyncio.sleep(backoff(failures))
                    await self._rewind(consumer)
        finally:
            if self._asking_paused_ends is not None:
                self._asking_paused_ends.cancel()
            await consumer.stop()

    def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **kafka_access.of_service(self.settings).client_options(),
            group_id=f"oms-{self.service}",
            client_id=f"oms-{self.service}-{self.settings.instance}" + ("" if self.order_path else "-follow-up"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.consumer_batch_size,
            fetch_max_wait_ms=self.pacing.fetch_wait_ms,
            fetch_min_bytes=self.pacing.fetch_min_bytes,
            isolation_level="read_committed",
        )
        consumer.subscribe(self.topics, listener=self.reassignments)
        return consumer

    async def _started(self) -> AIOKafkaConsumer:
        attempt = 0
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
                return consumer
            except Exception as exc:
                attempt += 1
                log.warning("consumer cannot start (%s), retry %d", describe(exc), attempt)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await asyncio.sleep(backoff(attempt))

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        self._give_way(consumer)
        fetched_in = self.reassignments.count
        batches = await self._poll(consumer)
        if batches:
            await self._process(consumer, batches, fetched_in)
        if time.monotonic() - self._lag_reported_at >= LAG_REPORTED_EVERY:
            self._lag_reported_at = time.monotonic()
            await self._report_lag(consumer)

    def _give_way(self, consumer: AIOKafkaConsumer) -> None:
        """Pause what can wait while the order path is behind, and read it again once the path caught up (the
        records stay on the broker, the committed offsets where they were). Looked at before every poll: a new
        assignment comes unpaused."""
        if self.watch is None:
            return
        if self.watch.waiting:
            consumer.pause(*(tp for tp in consumer.assignment() if tp.topic in self._wait_at_a_peak))
        elif paused := consumer.paused():
            consumer.resume(*paused)

    async def _poll(self, consumer: AIOKafkaConsumer) -> Batches:
        try:
            batches: Batches = await consumer.getmany(
                timeout_ms=self.settings.consumer_poll_ms, max_records=self.settings.consumer_batch_size
            )
            if batches and self.pacing.linger_ms:
                batches = await self._gather_more(consumer, batches)
        except Exception as exc:
            if not unreadable(exc):
                raise
            # Records drained from other partitions in the failed poll are gone from the client: read again
            # from the committed offsets, one partition at a time, to find the record and set it aside.
            log.error("the Kafka client cannot parse a fetched record (%s); looking for it", describe(exc))
            consumer.resume(*consumer.paused())  # the search reads every partition, whatever waits at a peak
            await self._rewind(consumer)
            for tp in sorted(consumer.assignment()):
                await self._read_alone(consumer, tp)
            return {}
        return batches

    async def _gather_more(self, consumer: AIOKafkaConsumer, batches: Batches) -> Batches:
        """The records of a poll and those that arrive within the linger after it, up to a batch: a poll of one
        or two records would otherwise pay a whole transaction each. Records keep their order per partition."""
        gathered = {tp: list(records) for tp, records in batches.items()}
        size = sum(len(records) for records in gathered.values())
        deadline = time.monotonic() + self.pacing.linger_ms / 1000
        while size < self.settings.consumer_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await consumer.getmany(
                timeout_ms=math.ceil(left * 1000), max_records=self.settings.consumer_batch_size - size
            )
            for tp, records in more.items():
                gathered.setdefault(tp, []).extend(records)
                size += len(records)
        return gathered

    async def _read_alone(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        for _ in range(POLLS_PER_PARTITION):
            if await self._read_to_the_end(consumer, tp):
                return
            fetched_in = self.reassignments.count
            try:
                batch = await consumer.getmany(
                    tp, timeout_ms=self._search_poll_ms, max_records=self.settings.consumer_batch_size
                )
            except Exception as exc:
                if not unreadable(exc):
                    raise
                await self._step_to_unreadable(consumer, tp)
                continue
            if batch:
                await self._process(consumer, batch, fetched_in)
            elif consumer.highwater(tp) is None:
                return  # nothing fetched for it yet in this poll's time: an empty partition, most likely

    @staticmethod
    async def _read_to_the_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
        """Whether the partition has nothing after the position, by the end its last fetch reported. Partitions
        with nothing to read are passed over at once rather than each waited on for a poll; one with records left
        is polled again when a poll comes back empty (its fetch may still be under way behind the others'),
        rather than passed over with the unreadable record perhaps on it, which would start the search again."""
        end = consumer.highwater(tp)
        return end is not None and await consumer.position(tp) >= end

    async def _step_to_unreadable(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """Read one record at a time up to the one the client cannot parse: handle those before it, set it
        aside by its offset and go on after it. A failed poll leaves the position on the first record it did
        not return, so that offset is the unreadable record's (or, when it shares a producer batch with an
        earlier unreadable one, a record the client cannot reach either: it parses the batch from its start)."""
        fetched_in = self.reassignments.count
        readable: list[Any] = []
        failure: BaseException | None = None
        while len(readable) < self.settings.consumer_batch_size:
            try:
                got = await consumer.getmany(tp, timeout_ms=self._search_poll_ms, max_records=1)
            except Exception as exc:
                if not unreadable(exc):
                    raise
                failure = exc
                break
            if not got:
                break
            readable.extend(got[tp])
        if readable:
            await self._process(consumer, {tp: readable}, fetched_in)
        if failure is None or self.reassignments.count != fetched_in:
            # Reassigned meanwhile: the position is no longer the unreadable record's (a rewound or new assignment
            # starts from the committed offset), so the search starts over from there at the next failed poll.
            return
        offset = await consumer.position(tp)
        reason = (
            f"unreadable: the Kafka client cannot parse the record ({describe(failure)}); it stays on "
            f"{tp.topic} partition {tp.partition} at offset {offset} until the topic's retention ends"
        )
        log.error("setting aside %s[%d]@%d: %s", tp.topic, tp.partition, offset, reason)
        await self._set_aside([Undecodable(Origin(tp.topic, tp.partition, offset, None, None, ()), reason, True)])
        UNREADABLE_RECORDS.labels(self.service, tp.topic).inc()
        MESSAGES_CONSUMED.labels(self.service, tp.topic, "dead_lettered").inc()
        consumer.seek(tp, offset + 1)
        await self._commit(consumer, {tp: offset + 1}, fetched_in)

    async def _process(self, consumer: AIOKafkaConsumer, batches: Batches, fetched_in: int) -> None:
        started = time.perf_counter()
        decoded: list[Inbound[Any]] = []
        poison: list[Undecodable] = []
        # The partitions' records in the order they were published, each partition's own order kept: a batch that
        # holds a cause and its effect from two topics (fulfillment's acceptance of an order change, then
        # allocation's change made on it) handles the cause first, as they would come one at a time.
        for record in heapq.merge(*batches.values(), key=attrgetter("timestamp")):
            item = decode(record, self.settings.max_body_bytes)
            (decoded if isinstance(item, Inbound) else poison).append(item)  # type: ignore[arg-type]
        if poison:
            await self._set_aside(poison)
            for item in poison:
                log.warning("dead-lettered %s: %s", item.origin, item.reason)
                MESSAGES_CONSUMED.labels(self.service, item.origin.topic, "dead_lettered").inc()
        if decoded:
            try:
                await self._retrying(lambda: self._apply(decoded))
            except Exception as exc:
                log.warning("batch of %d failed (%s); handling its records one by one", len(decoded), describe(exc))
                for item in decoded:
                    await self._apply_or_dead_letter(item)
        BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        if self.settings.fault_kill_after_db_commit:
            log.warning("fault injection: SIGKILL after database commit, before offset commit")
            os.kill(os.getpid(), signal.SIGKILL)
        await self._commit(
            consumer, {tp: records[-1].offset + 1 for tp, records in batches.items() if records}, fetched_in
        )

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], fetched_in: int) -> None:
        """Commit the offsets after a batch, unless the group reassigned partitions since the batch was fetched.
        The client rejoins in the background, and a commit carries the generation current when it is sent: a
        batch fetched before a reassignment (e.g. by an instance frozen past its session) would commit its
        offsets in the new generation, moving a partition's committed offset back behind what others committed,
        where it stays until a new record comes. Instead, every partition is read again from its committed
        offset (what this batch did is in the database, so the repeats change nothing) and committed then."""
        if self.reassignments.count != fetched_in:
            log.info("partitions were reassigned while a batch was handled; reading on from the committed offsets")
            await self._rewind(consumer)
            return
        try:
            await consumer.commit(offsets)
        except Exception as exc:
            # Partitions moved mid-batch, or the coordinator is away: whoever reads them next starts from the
            # last commit and gets these records again, which the inbox makes harmless.
            log.warning("offset commit failed (%s); the records may be delivered again", describe(exc))

    async def _apply(self, items: list[Inbound[Any]]) -> None:
        # Another reader's events on a topic this service reads change nothing here: they are not claimed in the
        # inbox (a repeat of one changes nothing either), and a batch of only those needs no transaction.
        ours = [item for item in items if type(item.payload) in self.routes]
        others = [item for item in items if type(item.payload) not in self.routes]
        if not ours:
            self._count_not_for_us(others)
            return
        async with self.pool.acquire() as conn, aftercommit.transaction(conn):
            aftercommit.after_commit(lambda: self._count_not_for_us(others))
            ids = (item.event_id for item in ours)
            fresh = set(ids) if self.idempotent_by_keys else await inbox.claim(conn, ids)
            new: list[Inbound[Any]] = []
            duplicates: list[Inbound[Any]] = []
            for item in ours:
                if item.event_id in fresh:
                    fresh.discard(item.event_id)  # a duplicate within the batch counts once
                    new.append(item)
                else:
                    duplicates.append(item)
            self._count(duplicates, "duplicate", count)
            if self.prepare is not None:
                await self.prepare(conn, new)
            for step in steps(new, self.routes):
                for handler, records in step:
                    # Ids in the log context only when they name what is handled: one record (e.g. retried alone).
                    with logs.bound(**(record_ids(records[0]) if len(records) == 1 else {})):
                        started = time.perf_counter()
                        await handler(conn, records)
                        observe(
                            HANDLER_SECONDS.labels(self.service, handler_name(handler)), time.perf_counter() - started
                        )
                        log.debug("handled %d records with %s", len(records), handler_name(handler))
                    self._count(records, "processed", count)

    def _count_not_for_us(self, others: list[Inbound[Any]]) -> None:
        self._count(others, "not_for_us", lambda counter, amount: counter.inc(amount))

    def _count(self, items: Sequence[Inbound[Any]], outcome: str, add: Callable[[Any, float], None]) -> None:
        """Count records by topic, once per topic and batch: a child counter looked up and incremented per record
        was a few percent of a service's time."""
        for topic, amount in Counter(item.topic for item in items).items():
            add(MESSAGES_CONSUMED.labels(self.service, topic, outcome), amount)

    async def _apply_or_dead_letter(self, item: Inbound[Any]) -> None:
        try:
            await self._retrying(lambda: self._apply([item]))
        except Exception as exc:
            persisted = " (contention persisted)" if classify(exc) is Failure.CONTENTION else ""
            with logs.bound(**record_ids(item)):
                log.error("dead-lettering %s: handler failed with %s%s", item.origin, describe(exc), persisted)
            await self._set_aside([Undecodable(item.origin, f"handler failed: {describe(exc)}{persisted}")])
            MESSAGES_CONSUMED.labels(self.service, item.topic, "dead_lettered").inc()

    async def _retrying(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` until it succeeds: an unavailable database or broker is waited out without end,
        contention is retried `contention_retries` times, lock waits also for as long as a stalled instance can
        hold a lock (`stall_window`: under chaos, a frozen instance's transaction keeps its row locks until the
        server ends it); a permanent failure is raised at once."""
        attempt = contention = 0
        waiting_since: float | None = None
        while True:
            try:
                await action()
                return
            except Exception as exc:
                kind = classify(exc)
                if kind is Failure.CONTENTION:
                    contention += 1
                    if waits_for_a_lock(exc) and waiting_since is None:
                        waiting_since = time.monotonic()
                stalled = waiting_since is not None and time.monotonic() - waiting_since < stall_window(self.settings)
                if kind is Failure.PERMANENT or (contention > self.settings.contention_retries and not stalled):
                    raise
                attempt += 1
                TRANSIENT_RETRIES.labels(self.service, kind.value).inc()
                delay = backoff(attempt)
                log.warning("%s (%s), retry %d in %.2fs", kind.value, exc.__class__.__name__, attempt, delay)
                await asyncio.sleep(delay)

    async def _set_aside(self, items: Sequence[Undecodable]) -> None:
        """Dead-letter the records before their offsets can be committed, however long that takes: the
        dead-letter path only fails while the broker or the database is unavailable."""
        attempt = 0
        while True:
            try:
                await self.dead_letters.send(items)
                return
            except Exception as exc:
                attempt += 1
                kind = classify(exc)
                TRANSIENT_RETRIES.labels(self.service, kind.value).inc()
                level = logging.CRITICAL if kind is Failure.PERMANENT else logging.WARNING
                log.log(level, "dead letters not kept yet (%s), retry %d", describe(exc), attempt)
                await asyncio.sleep(backoff(attempt))

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        """Move every assigned partition back to its committed offset (the start, if none), so that records
        the client handed out but this instance did not finish come again."""
        attempt = 0
        while True:
            try:
                for tp in consumer.assignment():
                    committed = await consumer.committed(tp)
                    if committed is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, committed)
                return
            except Exception as exc:
                attempt += 1
                log.warning("cannot rewind to the committed offsets yet (%s), retry %d", describe(exc), attempt)
                await asyncio.sleep(backoff(attempt))

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Per assigned partition: records not yet fetched, from this consumer's own positions (no broker
        round trip, except for paused partitions). Partitions that moved to another instance stop being reported
        here."""
        reported: set[TopicPartition] = set()
        paused_ends = self._paused_ends(consumer) if self.watch is not None else {}  # only followers wait
        for tp in consumer.assignment():
            highwater = paused_ends.get(tp, consumer.highwater(tp))
            if highwater is None:  # no fetch response for it yet
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked since assignment() was read
                continue
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(max(0, highwater - position))
            reported.add(tp)
        for tp in self._lag_reported - reported:
            CONSUMER_LAG.remove(self.service, tp.topic, str(tp.partition))
        self._lag_reported = reported

    def _paused_ends(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Where paused partitions end. A paused partition is not fetched, so its highwater stays where it was when
        the wait began, and its lag would show nothing of the backlog a peak builds, which is what an operator
        watches then: its end is asked of the broker instead, at most every `PAUSED_ENDS_EVERY` seconds and for
        at most as long, beside the loop (the broker answers it on the connection of the consumer's fetches, after
        the fetch it holds: awaited, it held the loop up to the fetch wait every second); until the answer comes the
        ends known before stand."""
        paused = consumer.paused()
        if not paused:
            self._known_paused_ends = {}
            return {}
        asking = self._asking_paused_ends
        if time.monotonic() - self._paused_ends_at >= PAUSED_ENDS_EVERY and (asking is None or asking.done()):
            self._paused_ends_at = time.monotonic()
            self._asking_paused_ends = asyncio.create_task(self._ask_paused_ends(consumer, sorted(paused)))
        return {tp: end for tp, end in self._known_paused_ends.items() if tp in paused}

    async def _ask_paused_ends(self, consumer: AIOKafkaConsumer, paused: list[TopicPartition]) -> None:
        try:
            self._known_paused_ends = await asyncio.wait_for(consumer.end_offsets(paused), PAUSED_ENDS_EVERY)
        except Exception as exc:  # the broker away or slow: asked again a look later
            log.debug("ends of paused partitions not known (%s)", describe(exc))


class Reassignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts the group's reassignments that took partitions from this instance, so a batch can tell whether its
    partitions are still held as they were when it was fetched; and notes when the consumer first joined."""

    def __init__(self) -> None:
        self.count = 0
        # Joined the group and was given its share, which may be none: an instance beyond a topic's partitions
        # stands by, ready to take over, and is ready as the others are.
        self.joined = False

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:  # a first assignment revokes nothing and fetched nothing before it
            self.count += 1

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.joined = True


def steps(items: list[Inbound[Any]], routes: Routes) -> list[Step]:
    """The records in steps, each handler taking its records of a step in one call, in the order read.

    A step ends before a record about an order (its envelope's order id) that an earlier record of the step,
    routed to another handler, is about: that handler's call must come first, and calls within a step run
    one handler after the other. Records about no order (from outside parties) are ordered by the handler
    they go to. Records no handler takes are left out."""
    found: list[Step] = []
    groups: dict[Handler, list[Inbound[Any]]] = {}
    taken_by: dict[UUID, Handler] = {}  # order id -> the handler its records go to in this step
    for item in items:
        handler = routes.get(type(item.payload))
        if handler is None:
            continue
        order_id = item.envelope.order_id
        if order_id is not None and taken_by.get(order_id, handler) != handler:
            found.append(list(groups.items()))
            groups, taken_by = {}, {}
        groups.setdefault(handler, []).append(item)
        if order_id is not None:
            taken_by[order_id] = handler
    if groups:
        found.append(list(groups.items()))
    return found


def one_at_a_time(handle: Callable[[Conn, Inbound[Any]], Awaitable[None]]) -> Handler:
    """A handler of records one by one, in the order read: for events rare enough that a statement or two per
    record costs nothing."""

    async def handler(conn: Conn, records: list[Inbound[Any]]) -> None:
        for record in records:
            await handle(conn, record)

    handler.__name__ = getattr(handle, "__name__", handler.__name__)
    return handler


def handler_name(handler: Handler) -> str:
    """A handler as metrics and logs name it: its function's name (bounded, unlike anything in a record)."""
    return getattr(handler, "__name__", type(handler).__name__)


def stall_window(settings: CommonSettings) -> float:
    """Seconds a lock may stay taken by an instance that stalled holding it: until the server ends its idle
    transaction, and the lock wait that notices."""
    return (settings.db_idle_in_tx_timeout_ms + settings.db_lock_timeout_ms) / 1000


def record_ids(item: Inbound[Any]) -> dict[str, UUID | None]:
    envelope = item.envelope
    return {"order_id": envelope.order_id, "event_id": envelope.event_id, "correlation_id": envelope.correlation_id}
