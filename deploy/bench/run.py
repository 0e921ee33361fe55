"""The benchmark run: starts what is not running (stack, services, simulator), measures the anchors, seeds a
catalogue and stock, then sends orders through the pipeline phase by phase (a burst on the intake topic, the
same burst again with py-spy on every service, open-loop rate steps over Kafka, over HTTP and as Shopify's
webhook, each until the pipeline saturates), waits after each phase until every order is delivered and its
messages are sent, writes the report, the chart and the profiles, and stops what it started.

Run: python -m deploy.bench [--quick] [--burst N] [--rates 10,25,...] [--http-rates ...] [--shopify-rates ...] ...
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from deploy.local import processes, stack
from deploy.local.client import PipelineClient
from deploy.local.settings import LocalStack
from shared.contracts import topics
from shared.contracts.topics import SERVICES

from . import anchors, load, observe, orders, profiles, report
from .cpu import Pipeline
from .measures import (
    Limits,
    Spread,
    completion_rate,
    drain_rate,
    due_offsets,
    hops,
    latencies,
    loop_holds,
    saturation,
    waited,
)
from .results import Phase, Run

REPO = processes.REPO
# Figures of the whole machine in a CPU snapshot, not components of the pipeline.
MACHINE = ("machine", "steal")
DOCS = REPO / "docs" / "benchmarks"
# The API's per-key rate limit is not what is measured: services the bench starts get one far above any step.
API_RATE_PER_SECOND = "1000000"
PROGRESS_EVERY = 5.0
# The Python processes py-spy samples: the services, the simulator and the SMTP sink (it spends CPU per message too).
PROFILED = (*SERVICES, "simulator", "smtp")
# Instance n (from 2) of a service listens on its service's port + 10 (n - 1): inside this stack's block of ports.
INSTANCE_PORT_SHIFT = 10


@dataclass(frozen=True)
class Settings:
    burst: int = 3000
    profile_burst: int = 1500
    warm_up: int = 200
    rates: tuple[float, ...] = (10, 25, 50, 100, 150, 200, 400, 600, 800)
    http_rates: tuple[float, ...] = (10, 25, 50, 100, 200, 400, 500, 600)
    shopify_rates: tuple[float, ...] = (100, 200, 400, 500)
    step_seconds: float = 60.0  # a rate sustained for a minute, as issue #8 measures it
    http_step_seconds: float = 20.0
    anchor_seconds: float = 15.0
    producer_records: int = 300_000
    drain_timeout: float = 240.0
    catalogue: int = 100
    instances: int = 1  # of every service, in one consumer group per service
    limits: Limits = field(default_factory=Limits)


QUICK = Settings(
    burst=300,
    profile_burst=200,
    warm_up=50,
    rates=(20, 50),
    http_rates=(20,),
    shopify_rates=(20,),
    step_seconds=10.0,
    http_step_seconds=10.0,
    anchor_seconds=5.0,
    producer_records=50_000,
    drain_timeout=90.0,
)


@dataclass
class Due:
    """When each order of a phase was due (epoch s): by order id once capture has given it one."""

    by_order: dict[str, float] = field(default_factory=dict)
    by_external_id: dict[str, float] = field(default_factory=dict)  # not yet seen in capture's table
    created: float = field(default_factory=time.time)

    @property
    def first(self) -> float:
        """The first order's due time (when every request failed: when the phase began)."""
        return min([*self.by_order.values(), *self.by_external_id.values()], default=self.created)


class Bench:
    def __init__(
        self, local: LocalStack, settings: Settings, run: Run, pool: asyncpg.Pool, observer: observe.Observer
    ) -> None:
        self.local = local
        self.client = PipelineClient(local)
        self.settings = settings
        self.run = run
        self.pool = pool
        self.observer = observer
        self.more = more_instances(local, settings.instances)
        self.pipeline = Pipeline.find(local, self.more)
        # The local stack runs what follows the order path behind it (deploy/local/supervisor.py); say how this
        # run's processes were started, since a stack started otherwise shares the cores otherwise.
        priorities = ", ".join(f"{name} {value}" for name, value in self.pipeline.priorities().items())
        run.notes.append(
            "CPU priority (niceness, higher runs behind; after a slash its session's scheduling group's, which is"
            " what orders separate programs where the kernel groups sessions) of each process at the start:"
            f" {priorities}."
        )
        self.services = {
            name: [local.http_url(name)]
            + [f"http://{p.local.host}:{p.http_port}" for p in self.more if p.service_name == name]
            for name in SERVICES
        }
        self.notifications = self.services["notifications"]
        self.output = Path(run.settings["output"])
        self.tag = uuid.uuid4().hex[:6]  # keeps SKUs and external ids apart from other runs on the same stack
        self.skus = orders.catalogue(self.tag, settings.catalogue)

    async def seed(self) -> None:
        print(f"seeding {len(self.skus)} products and their stock in {len(orders.WAREHOUSES)} warehouses", flush=True)
        await self.client.publish_products(self.skus)
        stock = [(wh, sku, orders.STOCK_PER_WAREHOUSE) for wh in orders.WAREHOUSES for sku in self.skus]
        await self.client.publish_receipts(stock, reference=f"bench-{self.tag}")
        await self.client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
        await self.client.wait_caught_up(
            "oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name]
        )

    # --- phases ------------------------------------------------------------------------------------------

    async def over_kafka(self, name: str, count: int, rate: float | None, profile_to: Path | None = None) -> Phase:
        """`count` orders on the intake topic: all at once (rate None) or one every 1/rate seconds."""
        documents = [orders.order(self.tag, slug(name), i, self.skus) for i in range(count)]
        bodies = [(f"{d['channel']}:{d['external_id']}", orjson.dumps(d)) for d in documents]
        offsets = due_offsets(count, rate)
        phase = Phase(name, "burst" if rate is None else "kafka", rate, count, profiled=profile_to is not None)

        async def send(due: Due) -> None:
            sent = await load.publish_open_loop(self.local, bodies, offsets)
            due.by_external_id.update(
                {d["external_id"]: sent.started + offset for d, offset in zip(documents, offsets, strict=True)}
            )
            phase.late_max = sent.late_max

        return await self.measure(phase, send, profile_to)

    async def over_http(self, kind: str, rate: float, seconds: float, vegeta: str) -> Phase:
        """POST /v1/orders at a constant rate for `seconds`, one new order per request (`http`), or the same orders
        as deliveries of Shopify's signed orders/create webhook (`shopify`)."""
        name = f"{kind} {rate:g}/s"
        work = self.local.state / "bench"
        work.mkdir(parents=True, exist_ok=True)
        planned = round(rate * seconds) + round(rate) + 10  # vegeta must never run out of fresh orders
        documents = [orders.order(self.tag, slug(name), i, self.skus) for i in range(planned)]
        targets = work / "targets.jsonl"
        if kind == "shopify":
            first_id = orders.first_shopify_id(self.tag, slug(name))
            targets.write_text(load.shopify_targets(self.client.capture_url, documents, first_id))
        else:
            token = json.loads(self.local.keys_file.read_text())["channels"][orders.CHANNEL]
            targets.write_text(load.vegeta_targets(self.client.capture_url, documents, token))
        phase = Phase(name, kind, rate, 0)

        async def send(due: Due) -> None:
            responses = await load.attack(vegeta, targets, rate, seconds, work / "results.bin")
            phase.orders = len(responses)
            due.by_order.update({r.order_id: r.due for r in responses if r.order_id})
            phase.http = Spread.of(r.latency for r in responses)
            phase.http_failures = dict(Counter(r.status for r in responses if r.order_id is None))
            phase.late_max = max((r.sent - r.due for r in responses), default=0.0)

        return await self.measure(phase, send, None)

    async def measure(self, phase: Phase, send: Callable[[Due], Awaitable[None]], profile_to: Path | None) -> Phase:
        print(f"{phase.name}: sending", flush=True)
        cpu_before = self.pipeline.snapshot()
        dead_before = await self.observer.dead_letters()
        database_before = await observe.database_work(self.pool)
        messages_before = await observe.messages_sent(self.notifications)
        watches_before = await observe.watches(self.services)
        recorders = await self.profile(profile_to) if profile_to else []
        due = Due()
        async with self.observer.held():
            await send(due)
        await self.settle(phase.name, due, messages_before)
        for recorder in recorders:
            if await recorder.stop():
                self.run.profiles.append(recorder.summary(REPO, self.output))
            else:
                self.run.notes.append(f"py-spy wrote no profile for {recorder.process}: see {recorder.log}")
        cpu_after = self.pipeline.snapshot()
        phase.wall = time.time() - due.first
        phase.cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after if name not in MACHINE}
        phase.machine_busy = cpu_after["machine"] - cpu_before["machine"]
        phase.steal = cpu_after["steal"] - cpu_before["steal"]
        phase.dead_letters = await self.observer.dead_letters() - dead_before
        database = await observe.database_work(self.pool) - database_before
        phase.pg_transactions, phase.wal_records, phase.wal_bytes = (
            database.commits,
            database.wal_records,
            database.wal_bytes,
        )
        phase.messages_sent = await observe.messages_sent(self.notifications) - messages_before
        watches_after = await observe.watches(self.services)
        phase.loop_holds = loop_holds(watches_before, watches_after)
        instances = {service: len(bases) for service, bases in self.services.items()}
        phase.waited = waited(watches_before, watches_after, instances)
        self.conclude(phase, due)
        print(report.phase_line(phase, self.run), flush=True)
        return phase

    async def profile(self, directory: Path) -> list[profiles.Recorder]:
        recorders = []
        for name, pid in self.pipeline.pids.items():
            if name in PROFILED:
                recorder = profiles.Recorder(name, pid, directory / f"{name}.speedscope.json")
                await recorder.start()
                recorders.append(recorder)
        return recorders

    async def settle(self, name: str, due: Due, messages_before: int) -> None:
        """Until every order taken in is delivered, its messages are sent and every service has read all it was sent
        (the next phase would otherwise share the machine with the last one's stragglers), or the drain deadline
        passes."""
        deadline = time.monotonic() + self.settings.drain_timeout
        shown = time.monotonic()
        while True:
            if due.by_external_id:
                found = await observe.order_ids(self.pool, orders.CHANNEL, due.by_external_id)
                due.by_order.update({order_id: due.by_external_id.pop(ext) for ext, order_id in found.items()})
            picked = sum(o in self.observer.pick_tasks for o in due.by_order)
            delivered = sum(o in self.observer.delivered for o in due.by_order)
            expected = observe.MESSAGES_PER_ORDER * len(due.by_order)
            sent = -1
            if not due.by_external_id and delivered == len(due.by_order):
                sent = await observe.messages_sent(self.notifications) - messages_before
                if sent >= expected and await self.observer.unread() == 0:
                    return
            if time.monotonic() > deadline:
                print(f"  {name}: not settled after {self.settings.drain_timeout:.0f} s; measuring what arrived")
                return
            if time.monotonic() - shown > PROGRESS_EVERY:
                shown = time.monotonic()
                print(
                    f"  {time.time() - due.first:6.1f} s  captured {len(due.by_order)}, pick tasks {picked},"
                    f" delivered {delivered}" + (f", messages {sent}/{expected}" if sent >= 0 else ""),
                    flush=True,
                )
            await asyncio.sleep(0.5)

    def conclude(self, phase: Phase, due: Due) -> None:
        tasks, delivered = self.observer.pick_tasks, self.observer.delivered
        phase.accepted = len(due.by_order)
        phase.picked = sum(o in tasks for o in due.by_order)
        phase.delivered = sum(o in delivered for o in due.by_order)
        phase.to_pick = Spread.of(latencies(due.by_order, tasks))
        phase.to_delivered = Spread.of(latencies(due.by_order, delivered))
        split = hops(due.by_order, self.observer.validated, self.observer.allocated, tasks)
        phase.hops = {hop: Spread.of(times) for hop, times in split.items()}
        released = [tasks[o] for o in due.by_order if o in tasks]
        if phase.offered_rate is None:
            phase.throughput = drain_rate(phase.picked, due.first, max(released, default=None))
        else:
            phase.throughput = completion_rate(released)
            p99 = phase.to_pick.p99 if phase.to_pick else None
            phase.saturated = saturation(
                phase.offered_rate, phase.throughput, p99, phase.errors, phase.orders, self.settings.limits
            )


def more_instances(local: LocalStack, count: int) -> list[processes.Process]:
    """Instances 2 to `count` of every service, each in its service's consumer group (the partitions are shared)."""
    return [
        processes.Process(
            local,
            f"{service}-{n}",
            f"services.{service}",
            local.ports.http[service] + INSTANCE_PORT_SHIFT * (n - 1),
            env={"OMS_INSTANCE": str(n), "OMS_API_RATE_PER_SECOND": API_RATE_PER_SECOND},
        )
        for n in range(2, count + 1)
        for service in SERVICES
    ]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --- the run -----------------------------------------------------------------------------------------------


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text().split()
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
    return {
        "cpu": f"{model or platform.machine()}, {os.cpu_count()} cores",
        "memory": f"{int(meminfo[meminfo.index('MemTotal:') + 1]) / 1024 / 1024:.0f} GiB",
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": java[0] if java else "unknown",
        "kafka": stack.kafka.VERSION,
        "everything on this machine": (
            f"Kafka, PostgreSQL (fsync on), {len(SERVICES)} services, simulator, SMTP sink, load generators"
        ),
    }


async def execute(local: LocalStack, settings: Settings, run: Run, started_services: bool) -> None:
    out = Path(run.settings["output"])
    print(f"anchors: pgbench on the stack's PostgreSQL ({settings.anchor_seconds:g} s each)", flush=True)
    run.anchors += await anchors.postgres(local, settings.anchor_seconds)
    print(f"anchors: Kafka ProducerPerformance ({settings.producer_records:,} records)", flush=True)
    producer, _ = await anchors.kafka(local, settings.producer_records)
    run.anchors.append(producer)
    for anchor in run.anchors:
        print(f"  {anchor.what}: {anchor.figure:,.0f} {anchor.unit}", flush=True)
    vegeta = load.vegeta_binary(local) if settings.http_rates or settings.shopify_rates else ""

    pool = await observe.admin_pool(local)
    observer = observe.Observer(local)
    await observer.start()
    try:
        bench = Bench(local, settings, run, pool, observer)
        run.machine["postgresql"] = str(await pool.fetchval("SHOW server_version"))
        await bench.seed()
        if settings.warm_up:
            warm_rate = 25.0
            await bench.over_kafka("warm-up", settings.warm_up, warm_rate)
            run.notes.append(f"Warm-up: {settings.warm_up} orders at {warm_rate:g}/s before measuring (not reported).")
        run.phases.append(await bench.over_kafka("burst", settings.burst, None))
        if settings.profile_burst:
            directory = out / "profiles" / run.run_id
            run.phases.append(await bench.over_kafka("burst + py-spy", settings.profile_burst, None, directory))

        async def until_saturated(rates: tuple[float, ...], step: Callable[[float], Awaitable[Phase]]) -> None:
            for rate in rates:
                run.phases.append(phase := await step(rate))
                if phase.saturated:
                    return

        await until_saturated(
            settings.rates,
            lambda rate: bench.over_kafka(f"kafka {rate:g}/s", round(rate * settings.step_seconds), rate),
        )
        for kind, rates in (("http", settings.http_rates), ("shopify", settings.shopify_rates)):
            await until_saturated(
                rates, functools.partial(bench.over_http, kind, seconds=settings.http_step_seconds, vegeta=vegeta)
            )
    finally:
        await observer.stop()
        await pool.close()
    if not started_services:
        run.notes.append("The services were already running: their settings (e.g. the API rate limit) are as found.")


def parse(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m deploy.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (~2 minutes) for trying the harness")
    parser.add_argument("--burst", type=int, help="orders in the burst (default 3000; quick 300)")
    parser.add_argument("--profile-burst", type=int, help="orders in the profiled burst, 0 for none (1500; 200)")
    parser.add_argument("--warm-up", type=int, help="orders sent before measuring (200; 50)")
    parser.add_argument("--rates", help="Kafka rate steps, orders/s, comma-separated, empty for none")
    parser.add_argument("--http-rates", help="HTTP rate steps, orders/s, comma-separated, empty for none")
    parser.add_argument("--step-seconds", type=float, help="seconds of each Kafka rate step (60; 10)")
    parser.add_argument("--shopify-rates", help="Shopify webhook rate steps, orders/s, comma-separated, empty for none")
    parser.add_argument("--http-step-seconds", type=float, help="seconds of each HTTP or Shopify step (20; 10)")
    parser.add_argument("--anchor-seconds", type=float, help="seconds of each pgbench run (15; 5)")
    parser.add_argument("--producer-records", type=int, help="records ProducerPerformance sends (300000; 50000)")
    parser.add_argument("--drain-timeout", type=float, help="seconds to wait for a phase to settle (240; 90)")
    parser.add_argument("--instances", type=int, choices=range(1, 7), help="instances of every service (1; at most 6)")
    parser.add_argument("--p99-limit", type=float, help="a step with a p99 to pick task above this is saturated (5)")
    parser.add_argument("--output", type=Path, help="where results go (docs/benchmarks; quick: $OMS_STATE_DIR/bench)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    chosen: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "burst",
            "profile_burst",
            "warm_up",
            "step_seconds",
            "http_step_seconds",
            "anchor_seconds",
            "producer_records",
            "drain_timeout",
            "instances",
        )
        if getattr(args, name) is not None
    }
    for name in ("rates", "http_rates", "shopify_rates"):
        if getattr(args, name) is not None:
            chosen[name] = tuple(float(r) for r in getattr(args, name).split(",") if r.strip())
    if args.p99_limit is not None:
        chosen["limits"] = replace(settings.limits, p99_seconds=args.p99_limit)
    return replace(settings, **chosen), args


def main(argv: list[str] | None = None) -> None:
    settings, args = parse(argv)
    local = LocalStack.from_env()
    output = args.output or (local.state / "bench" if args.quick else DOCS)
    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    now = datetime.now(UTC)
    run_id = f"{now:%Y%m%d-%H%M}-{commit[:7]}" + ("-quick" if args.quick else "")
    recorded = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items() if k != "limits"}
    recorded |= {"saturation": settings.limits.__dict__, "output": str(output)}
    run = Run(
        run_id=run_id,
        started_at=now.isoformat(timespec="seconds"),
        command=" ".join(["python -m deploy.bench", *(sys.argv[1:] if argv is None else argv)]),
        quick=args.quick,
        commit=commit,
        machine=machine(),
        settings=recorded,
        load_before=os.getloadavg(),
    )
    print(f"benchmark {run_id}: load average {' '.join(f'{x:.2f}' for x in run.load_before)}", flush=True)

    started_stack = not stack.running(local)
    if started_stack:
        asyncio.run(stack.up(local))
    pipeline = processes.everything(local) + more_instances(local, settings.instances)
    started = [p for p in pipeline if p.pid() is None]
    if started:
        os.environ.setdefault("OMS_API_RATE_PER_SECOND", API_RATE_PER_SECOND)
        run.settings["api_rate_per_second"] = os.environ["OMS_API_RATE_PER_SECOND"]
    ok = False
    try:
        processes.start_all(pipeline)
        asyncio.run(execute(local, settings, run, started_services=len(started) == len(pipeline)))
        ok = True
    finally:
        for process in reversed(started):
            process.stop()
        if started_stack:
            stack.down(local)
    run.load_after = os.getloadavg()
    written = report.write(run, output)
    if output == DOCS:
        shutil.copyfile(written.with_suffix(".png"), DOCS / "latest.png")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in run.load_after)}")
    print(report.summary(run))
    print(f"report: {written}")
    sys.exit(0 if ok else 1)
