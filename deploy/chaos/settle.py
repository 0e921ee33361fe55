"""After the faults: the healer brings every component and instance back (as an operator or a supervisor would),
then the run waits, with a deadline, until the pipeline has nothing left to do: every consumer group caught up on
its inputs, every outbox empty, no message of the run waiting to be rendered or delivered, and that holding for
a few consecutive looks (the simulated warehouses and carriers act a moment after they read)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field

from deploy.local import stack
from deploy.local.client import admin_client, plain_consumer
from deploy.local.settings import LocalStack
from shared.backbone.kafka import partitions
from shared.backbone.kafka_access import Access
from shared.backbone.peak import unread
from shared.contracts import topics
from shared.contracts.topics import SERVICES

from .faults import AdminSession
from .fleet import Fleet

# The simulator's groups (deploy/local/simulator.py): what the warehouses and the carriers read.
SIMULATOR_GROUPS = {
    "warehouses-simulator": [topics.PICK_TASKS.name, topics.RETURN_EVENTS.name],
    "carriers-simulator": [topics.FULFILLMENT_EVENTS.name],
}
QUIET_LOOKS = 4
LOOK_EVERY = 1.0


def consumed() -> dict[str, list[str]]:
    """Each consumer group and the topics it reads: the services' (from the registry) and the simulator's."""
    groups = {f"oms-{s}": [t.name for t in topics.inputs(s)] for s in SERVICES}
    return groups | SIMULATOR_GROUPS


async def heal(fleet: Fleet, local: LocalStack, infrastructure: stack.Infrastructure = stack.NATIVE) -> list[str]:
    """Everything running again: stopped instances continued, the broker, the database and the mail server
    started if down, every instance ready. Returns what had to be done, and what could not be."""
    done = []
    for instance in fleet.instances:
        instance.held_down = False
        if instance.stopped() and (pid := instance.pid()) is not None:
            os.kill(pid, signal.SIGCONT)
            done.append(f"continued {instance.name}")
    if not infrastructure.kafka.running(local):
        done.append("started the broker")
    await infrastructure.kafka.start(local)
    if not await asyncio.to_thread(infrastructure.postgres.running, local):
        done.append("started the database")
    await infrastructure.postgres.start(local)  # also waits until it answers
    if not infrastructure.smtp.running(local):
        done.append("started the mail server")
    await infrastructure.smtp.start(local)
    late = await fleet.wait_ready(timeout=180)
    done += [f"NOT READY: {name}" for name in late]
    return done


async def group_lags(access: Access) -> dict[str, int]:
    """Records each group has not committed yet, on the topics it reads (a partition it never committed on counts
    from the partition's start, as the watch of the order path counts it)."""
    groups = consumed()
    async with admin_client(access) as admin, plain_consumer(access) as consumer:
        tps = await partitions(admin, sorted({t for names in groups.values() for t in names}))
        return {
            group: (await unread(admin, consumer, {group: names}, topic_partitions=tps)).records
            for group, names in groups.items()
        }


@dataclass
class Quiet:
    reached: bool
    seconds: float
    looks: int
    last: dict[str, int] = field(default_factory=dict)  # what was still pending at the last look


async def pending_work(admin: AdminSession, email_pattern: str) -> dict[str, int]:
    outboxes = await admin.fetch(
        " UNION ALL ".join(f"SELECT '{s}' AS service, count(*) AS n FROM {s}.outbox" for s in SERVICES)
    )
    work = {f"outbox {r['service']}": int(r["n"]) for r in outboxes}
    [messages] = await admin.fetch(
        "SELECT count(*) FILTER (WHERE m.planned_at IS NULL) AS unplanned,"
        " (SELECT count(*) FROM notifications.deliveries d JOIN notifications.contacts k USING (order_id)"
        "   WHERE d.status = 'pending' AND k.email LIKE $1) AS undelivered"
        " FROM notifications.messages m JOIN notifications.contacts c USING (order_id) WHERE c.email LIKE $1",
        email_pattern,
    )
    work["messages to render"] = int(messages["unplanned"])
    work["deliveries pending"] = int(messages["undelivered"])
    return work


async def quiesce(admin: AdminSession, access: Access, email_pattern: str, timeout: float) -> Quiet:
    started = time.monotonic()
    quiet_looks = looks = 0
    last: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        looks += 1
        try:
            last = {f"lag {g}": n for g, n in (await group_lags(access)).items()} | await pending_work(
                admin, email_pattern
            )
        except Exception as exc:  # the broker or the database still recovering: look again
            last = {f"cannot look ({exc.__class__.__name__})": 1}
        quiet_looks = quiet_looks + 1 if not any(last.values()) else 0
        if quiet_looks >= QUIET_LOOKS:
            return Quiet(True, time.monotonic() - started, looks, last)
        await asyncio.sleep(LOOK_EVERY)
    return Quiet(False, time.monotonic() - started, looks, {k: v for k, v in last.items() if v})
