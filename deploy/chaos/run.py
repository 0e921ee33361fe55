"""One chaos run from start to verdict: the stack and two instances of every service up, the catalogue and stock
seeded, the load and the faults at once, then healing, quiescence, the evidence and the checks, the report."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import asyncpg

from deploy.local import mailsink, processes, stack
from deploy.local.client import PipelineClient
from deploy.local.settings import LocalStack
from shared.contracts import topics

from . import evidence, invariants
from .faults import AdminSession, Injector, plan
from .fleet import Fleet
from .load import Driver, Ledger, Outside
from .report import Report
from .settle import heal, quiesce


@dataclass(frozen=True)
class Profile:
    name: str
    orders: int
    faults: int
    window: float  # seconds over which the orders are sent and the faults injected
    poison: int
    settle_timeout: float  # longest wait for the pipeline to finish its work after healing
    peak: int = 0  # orders sent at once besides (deploy/chaos/load.draw_orders)


FULL = Profile("full", orders=2000, faults=100, window=540.0, poison=24, settle_timeout=360.0, peak=800)
SHORT = Profile("short", orders=300, faults=20, window=90.0, poison=8, settle_timeout=180.0)


def accepted_orders(ledger: Ledger) -> list[invariants.Accepted]:
    return [invariants.Accepted(o.channel, o.external_id, o.order_id, o.scenario) for o in ledger.orders if o.accepted]


def poison_of(ledger: Ledger) -> list[invariants.Poison]:
    return [invariants.Poison(p.key, p.topic, p.reason, p.readers) for p in ledger.poison if p.sent]


def check(ledger: Ledger, found: evidence.Evidence) -> list[invariants.Check]:
    orders = invariants.orders_final_or_waiting(
        accepted_orders(ledger), found.capture, found.allocation, found.reservations
    )
    stock = invariants.stock_balances(
        found.stock, ledger.receipts, found.reservations, found.shipped_by_fulfillment, found.capture, found.allocation
    )
    tasks = invariants.pick_tasks_seen(found.pick_tasks, found.pick_task_records)
    mail = invariants.one_mail_each(found.messages, found.mails, found.capture)
    mail.count("repeats dropped by the mail server (same Message-ID)", found.mail_repeats_dropped)
    letters = invariants.only_poison_dead_lettered(found.dead_letters, poison_of(ledger))
    return [orders, stock, tasks, mail, letters]


async def run(
    seed: int,
    profile: Profile,
    local: LocalStack,
    running: Mapping[str, processes.Process] | None = None,
    infrastructure: stack.Infrastructure | None = None,
) -> Report:
    """The run on `infrastructure` as it runs (the test session's), else on the native stack, started if it is not
    and then stopped at the end."""
    began, began_epoch = time.monotonic(), time.time()
    durations: dict[str, float] = {}
    started_stack = infrastructure is None and not stack.running(local)
    if started_stack:
        await stack.up(local)
    fleet = Fleet.around(local, running)
    admin = AdminSession(local)
    client = PipelineClient(local)
    run_id = uuid.uuid4().hex[:8]
    print(f"chaos run {run_id}: seed {seed}, {profile}", flush=True)
    try:
        await fleet.start()
        topic_start = await evidence.end_offsets(local.access(), evidence.watched_topics())
        outside = Outside(local, fleet.capture_urls())
        await outside.start()
        try:
            driver = Driver(seed, run_id, outside)
            await driver.seed_stock()
            await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name], timeout=120)
            await client.wait_caught_up(
                "oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name], timeout=120
            )
            durations["setup"] = time.monotonic() - began
            faults = plan(seed, profile.faults, profile.window, [i.name for i in fleet.instances])
            injector = Injector(fleet, local, admin, infrastructure or stack.NATIVE)
            peak = f" and {profile.peak} at once" if profile.peak else ""
            print(f"load: {profile.orders} orders over {profile.window:.0f}s{peak}; {len(faults)} faults", flush=True)
            async with fleet.supervised():
                mark = time.monotonic()
                ledger, injected = await asyncio.gather(
                    driver.run(profile.orders, profile.window, profile.poison, profile.peak), injector.run(faults)
                )
                durations["load and faults"] = time.monotonic() - mark
                mark = time.monotonic()
                healing = await heal(fleet, local, infrastructure or stack.NATIVE)
                durations["healing"] = time.monotonic() - mark
                print(f"healed: {healing or 'nothing to do'}", flush=True)
                mark = time.monotonic()
                quiet = await quiesce(admin, local.access(), f"chaos-{run_id}-%@example.test", profile.settle_timeout)
                durations["quiescence"] = time.monotonic() - mark
                print(f"quiescence: {quiet}", flush=True)
        finally:
            await outside.close()
        mark = time.monotonic()
        conn = await asyncpg.connect(local.pg_dsn(), password=local.pg_admin_password)
        try:
            found = await evidence.gather(
                conn,
                local.access(),
                run_id,
                topic_start,
                local.maildir,
                local.state / mailsink.REPEATS_FILE,
                began_epoch,
            )
        finally:
            await conn.close()
        checks = check(ledger, found)
        durations["checking"] = time.monotonic() - mark
        durations["total"] = time.monotonic() - began
        return Report(
            seed,
            run_id,
            asdict(profile),
            injected,
            checks,
            ledger.as_json(),
            healing,
            asdict(quiet),
            durations,
        )
    finally:
        await admin.close()
        await fleet.stop_started()
        if started_stack:
            await asyncio.to_thread(stack.down, local)
