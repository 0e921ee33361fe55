"""The faults a chaos run injects, each kind a small function, and the seeded plan that decides kind, target and
timing. Faults run while the load runs and overlap each other; two faults never act on the same target at once.

- kill: SIGKILL of a service instance; the supervisor starts it again after `hold` seconds;
- stop: SIGSTOP of an instance for longer than the consumer session timeout, then SIGCONT: a zombie that comes
  back after its partitions moved to the other instance;
- kafka: `kill -9` of the broker (its container, on the containers test stack), started again after `hold` seconds
  as `stack up` starts it;
- postgres: immediate shutdown (a crash: no checkpoint, recovery at start; a container is killed), started again
  after `hold` seconds;
- smtp: the mail server gone for 30 s;
- relay: SIGSTOP of the instance whose outbox relay holds its service's relay lock in the middle of publishing a
  batch (read from pg_locks and pg_stat_activity), kept stopped past the idle-in-transaction timeout so the server
  ends that transaction and the other instance's relay takes over, then SIGCONT (another service's relay when the
  planned one gets no batch to publish for half the search).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from deploy.local import stack
from deploy.local.settings import LocalStack
from shared.backbone import outbox
from shared.backbone.settings import CommonSettings

from .fleet import Fleet, Instance

# The consumer (shared/backbone/consumer.py) keeps aiokafka's session timeout: a member silent this long
# loses its partitions.
SESSION_TIMEOUT = float(inspect.signature(AIOKafkaConsumer.__init__).parameters["session_timeout_ms"].default) / 1000
SMTP_DOWN = 30.0
# Services whose outbox carries events (notifications only sends mail).
RELAYING = ("capture", "allocation", "fulfillment")
INFRASTRUCTURE = ("kafka", "postgres", "smtp")
WEIGHTS = {"kill": 30, "stop": 22, "kafka": 10, "postgres": 12, "smtp": 8, "relay": 10}
# Looking for a relay in the middle of a batch: how long, and how often to look. A relay is caught only while
# its batch is on the way to the broker, which after a broker or database fault may not happen for a while.
RELAY_SEARCH_SECONDS = 150.0
RELAY_POLL_SECONDS = 0.005
# A relay's last statement while it publishes a batch it read.
PUBLISHING = (outbox.TAKE.strip(), outbox.RELEASE_SNAPSHOT)


def idle_in_transaction_timeout() -> float:
    """The services' idle-in-transaction timeout as they read it (OMS_DB_IDLE_IN_TX_TIMEOUT_MS or the default)."""
    return float(CommonSettings(service="capture", environment="development").db_idle_in_tx_timeout_ms) / 1000


@dataclass(frozen=True)
class Fault:
    number: int
    kind: str
    target: str  # an instance name, a service (relay) or a component (kafka, postgres, smtp)
    at: float  # seconds after the load started
    hold: float  # seconds the target stays down or stopped

    def describe(self) -> str:
        return f"#{self.number} {self.kind} {self.target} at {self.at:.1f}s for {self.hold:.1f}s"


def hold_for(kind: str, rng: random.Random) -> float:
    """How long a fault of this kind keeps its target down or stopped."""
    match kind:
        case "kill":
            return rng.uniform(0.2, 3.0)
        case "stop":
            return SESSION_TIMEOUT + rng.uniform(2.0, 8.0)
        case "kafka" | "postgres":
            return rng.uniform(0.5, 5.0)
        case "smtp":
            return SMTP_DOWN
        case "relay":
            return idle_in_transaction_timeout() + rng.uniform(3.0, 8.0)
    raise ValueError(kind)


# Roughly how long a target takes to be itself again after the fault's hold (a restart, a rebalance): the plan
# puts no second fault on a target before that.
LONG = ("relay", "smtp")
# The mail server stays up at least 30 s between two outages: messages held back get their retry in between.
RECOVERY = {"kill": 8.0, "stop": 3.0, "kafka": 18.0, "postgres": 3.0, "smtp": 30.0, "relay": 5.0}


def plan(seed: int, count: int, window: float, instances: list[str]) -> list[Fault]:
    """`count` faults drawn from the seed: kind by weight, a target of that kind and a start within the load
    window. Faults on different targets overlap freely; a target gets its next fault once it has recovered from the
    last (a frozen relay goes to the service whose relay is free soonest), so every fault planned is injected as
    planned, and a fault starts late only when its target is still busy."""
    rng = random.Random(f"faults-{seed}")
    kinds, weights = zip(*WEIGHTS.items(), strict=True)
    # Every kind at least once, early enough to end within the window; the rest by weight.
    longest = {kind: max(hold_for(kind, random.Random(0)), 0.0) + RECOVERY[kind] + 10 for kind in kinds}
    drawn = [(rng.uniform(0, max(0.0, window - longest[kind])), kind) for kind in kinds[:count]]
    drawn += [(rng.uniform(0, window), rng.choices(kinds, weights)[0]) for _ in range(count - len(drawn))]
    drawn.sort()
    free_at: dict[str, float] = {}
    faults = []
    for at, drawn_kind in drawn:
        kind = drawn_kind
        while True:
            hold = hold_for(kind, rng)
            if kind in ("kill", "stop"):
                target = rng.choice(instances)
            elif kind == "relay":
                target = min(RELAYING, key=lambda s: (free_at.get(s, 0.0), rng.random()))
            else:
                target = kind
            start = max(at, free_at.get(target, 0.0))
            if start + hold <= window or kind not in LONG:
                break
            kind = rng.choice([k for k in kinds if k not in LONG])  # a long one would outlast the window
        free_at[target] = start + hold + RECOVERY[kind]
        faults.append((round(start, 2), kind, target, round(hold, 2)))
    faults.sort()
    return [Fault(n + 1, kind, target, at, hold) for n, (at, kind, target, hold) in enumerate(faults)]


@dataclass
class Injected:
    """What became of a planned fault."""

    fault: Fault
    injected: bool = False
    started: float = 0.0  # seconds after the load started
    ended: float = 0.0
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self.fault), **{k: v for k, v in asdict(self).items() if k != "fault"}}


class Skipped(Exception):
    """The fault could not be injected as planned (its target was not there); it does not count."""


class AdminSession:
    """One administrator connection for looking at locks and sessions, opened again after a database fault."""

    def __init__(self, local: LocalStack) -> None:
        self.local = local
        self.conn: asyncpg.Connection | None = None
        self.turn = asyncio.Lock()  # one query at a time on the connection (faults look concurrently)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        for attempt in range(100):
            async with self.turn:
                try:
                    if self.conn is None or self.conn.is_closed():
                        self.conn = await asyncpg.connect(
                            self.local.pg_dsn(), password=self.local.pg_admin_password, timeout=5
                        )
                    return await self.conn.fetch(query, *args, timeout=10)
                except (
                    OSError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    asyncpg.InternalClientError,
                    TimeoutError,
                ):
                    await self._close()
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        raise Skipped("the database did not answer")

    async def close(self) -> None:
        async with self.turn:
            await self._close()

    async def _close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
            self.conn = None


@dataclass
class Injector:
    fleet: Fleet
    local: LocalStack
    admin: AdminSession
    infrastructure: stack.Infrastructure = stack.NATIVE  # where the broker, the database and the mail server run
    started_at: float = field(default_factory=time.monotonic)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    injected: set[int] = field(default_factory=set)

    def now(self) -> float:
        return time.monotonic() - self.started_at

    def lock(self, target: str) -> asyncio.Lock:
        return self.locks.setdefault(target, asyncio.Lock())

    async def run(self, faults: list[Fault]) -> list[Injected]:
        """Start each fault at its time (late when its target is busy with an earlier one); wait for all."""
        running = []
        for fault in faults:
            await asyncio.sleep(max(0.0, fault.at - self.now()))
            running.append(asyncio.create_task(self.inject(fault), name=f"fault-{fault.number}"))
        return list(await asyncio.gather(*running))

    async def inject(self, fault: Fault) -> Injected:
        outcome = Injected(fault)
        action: Callable[[Fault], Awaitable[str]] = getattr(self, f"_{fault.kind}")
        try:
            if fault.kind == "relay":  # the target instance is found at the moment, and locked then
                outcome.started = self.now()
                outcome.detail = await action(fault)
            else:
                async with self.lock(fault.target):
                    outcome.started = self.now()
                    outcome.detail = await action(fault)
        except Skipped as exc:
            outcome.detail = f"skipped: {exc}"
        except Exception as exc:  # the healer brings back whatever this left down
            outcome.detail = f"failed: {exc.__class__.__name__}: {str(exc)[:300]}"
        outcome.injected = fault.number in self.injected
        outcome.ended = self.now()
        print(f"  [{outcome.ended:6.1f}s] fault {fault.describe()}: {outcome.detail}", flush=True)
        return outcome

    def _struck(self, fault: Fault) -> None:
        """The fault has hit its target (whatever becomes of bringing it back)."""
        self.injected.add(fault.number)

    # ---- the kinds ----

    async def _kill(self, fault: Fault) -> str:
        instance = await self._running(fault.target)
        instance.held_down = True
        try:
            pid = instance.pid()
            if pid is None:
                raise Skipped(f"{instance.name} is not running")
            os.kill(pid, signal.SIGKILL)
            self._struck(fault)
            await self._gone(instance)
            await asyncio.sleep(fault.hold)
        finally:
            instance.held_down = False
        back = await self._back(instance)
        return f"pid {pid} killed; {back}"

    async def _stop(self, fault: Fault) -> str:
        instance = await self._running(fault.target)
        pid = instance.pid()
        if pid is None:
            raise Skipped(f"{instance.name} is not running")
        os.kill(pid, signal.SIGSTOP)
        self._struck(fault)
        try:
            await asyncio.sleep(fault.hold)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return f"pid {pid} stopped for {fault.hold:.1f}s (session timeout {SESSION_TIMEOUT:.0f}s), continued"

    async def _kafka(self, fault: Fault) -> str:
        broker = self.infrastructure.kafka
        if broker.pid(self.local) is None:
            raise Skipped("the broker is not running")
        pid = await asyncio.to_thread(broker.kill, self.local)  # -9, and waits until it has exited
        self._struck(fault)
        await asyncio.sleep(fault.hold)
        restarted = time.monotonic()
        await broker.start(self.local)  # as `stack up` starts it: same configuration and data
        ready = time.monotonic() - restarted
        return f"broker pid {pid} killed (-9), down {fault.hold:.1f}s, ready {ready:.1f}s after its start"

    async def _postgres(self, fault: Fault) -> str:
        database = self.infrastructure.postgres
        await asyncio.to_thread(database.kill, self.local)  # immediate shutdown (a container: SIGKILL)
        self._struck(fault)
        await asyncio.sleep(fault.hold)
        restarted = time.monotonic()
        await database.start(self.local)  # as `stack up` starts it, and waits until it answers
        return f"immediate shutdown, down {fault.hold:.1f}s, ready {time.monotonic() - restarted:.1f}s after start"

    async def _smtp(self, fault: Fault) -> str:
        mail_server = self.infrastructure.smtp
        if mail_server.pid(self.local) is None:
            raise Skipped("the mail server is not running")
        pid = await asyncio.to_thread(mail_server.kill, self.local)
        self._struck(fault)
        await asyncio.sleep(fault.hold)
        await mail_server.start(self.local)
        return f"mail server pid {pid} killed, down {fault.hold:.0f}s"

    async def _relay(self, fault: Fault) -> str:
        """Wait for the moment the service's relay has read a batch from its outbox and not yet deleted it (it is
        publishing), stop that instance, and check it was caught there; else let it go and look again.

        A relay is caught only while it has a batch to publish. When the planned service's relay gets none for half
        the search (no orders reach it while the services before it are down), the relays of the other services
        are looked for too: the fault is about relays, the code every service shares."""
        half = RELAY_SEARCH_SECONDS / 2
        caught = await self._freeze_relay(fault, [fault.target], time.monotonic() + half)
        if caught is None:
            caught = await self._freeze_relay(fault, list(RELAYING), time.monotonic() + half)
            if caught is not None:
                caught += f" (no {fault.target} relay was caught in {half:.0f}s)"
        if caught is None:
            raise Skipped(f"no relay caught in the middle of a batch within {RELAY_SEARCH_SECONDS:.0f}s")
        return caught

    async def _freeze_relay(self, fault: Fault, services: list[str], deadline: float) -> str | None:
        looked = 0
        while time.monotonic() < deadline:
            looked += 1
            for service in services:
                holder = await self._relay_holder(service)
                if holder is None:
                    continue
                instance, backend = holder
                # One frozen relay per service at a time, and no other fault on its instance meanwhile.
                relay, target = self.lock(f"relay:{service}"), self.lock(instance.name)
                if relay.locked() or target.locked() or (pid := instance.pid()) is None:
                    continue
                async with relay, target:
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        caught = await self._relay_holder(service)
                        if caught is not None and caught[1] == backend:
                            self._struck(fault)
                            await asyncio.sleep(fault.hold)
                            return (
                                f"{instance.name} (pid {pid}) stopped holding the {service} relay lock in the"
                                f" middle of a batch (after {looked} looks), for {fault.hold:.1f}s"
                                f" (idle-in-transaction timeout {idle_in_transaction_timeout():.0f}s), continued"
                            )
                    finally:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(RELAY_POLL_SECONDS)
        return None

    async def _relay_holder(self, service: str) -> tuple[Instance, int] | None:
        """The instance (and its backend pid) whose relay holds the service's relay lock, when its transaction has
        read a batch from the outbox and not yet deleted it: its last statement is the relay's read (outbox.TAKE),
        or the release of its snapshot that follows it while the batch is published."""
        rows = await self.admin.fetch(
            "SELECT a.application_name, a.pid, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
            " AND l.classid = hashtext('outbox-relay')::oid AND l.objid = hashtext($1)::oid"
            f" AND EXISTS (SELECT 1 FROM {service}.outbox)",  # the batch it read is not deleted yet
            service,
        )
        for row in rows:
            instance = self.fleet.by_session(row["application_name"])
            if instance is not None and row["query"].strip() in PUBLISHING:
                return instance, int(row["pid"])
        return None

    # ---- helpers ----

    async def _running(self, name: str) -> Instance:
        """The instance, once it runs (the supervisor may be starting it after an earlier fault)."""
        instance = self.fleet.named(name)
        if not await _until(lambda: instance.pid() is not None and not instance.stopped(), 60):
            raise Skipped(f"{name} did not come up")
        return instance

    async def _gone(self, instance: Instance) -> None:
        await _until(lambda: instance.pid() is None, 10)

    async def _back(self, instance: Instance) -> str:
        started = time.monotonic()
        if await _until(instance.ready, 90, every=0.5, in_thread=True):
            return f"ready again {time.monotonic() - started:.1f}s after its restart"
        return "not ready again within 90s (the healer checks it at the end)"


async def _until(probe: Callable[[], bool], timeout: float, every: float = 0.1, in_thread: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(probe) if in_thread else probe():
            return True
        await asyncio.sleep(every)
    return False
