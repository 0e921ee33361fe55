"""The run written down: a markdown report with the anchors, the pipeline's phases, CPU per 1,000 orders and
the profile summaries, the raw results as JSON, the chart, and an index of every run in the output folder.
Everything but `write` is pure."""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import chart
from .measures import HOPS, LoopHolds, Spread
from .results import COMPONENTS, ORDER_TRANSACTION, OURS, Phase, Run

CATEGORIES_SHOWN = 6
# What an order may take from intake to its pick task at a steady rate, at the 99th percentile: the report says
# up to which rate step the pipeline held it.
PICK_TASK_P99_TARGET = 0.25


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def spread(found: Spread | None, everything: bool = True) -> str:
    if found is None:
        return "-"
    shown = (found.p50, found.p95, found.p99, found.max) if everything else (found.p50, found.p99)
    return " / ".join(duration(v) for v in shown)


def ratio(run: Run, throughput: float | None) -> str:
    anchor = run.anchor(ORDER_TRANSACTION)
    if anchor is None or throughput is None:
        return "-"
    return f"{throughput / anchor.figure:.1%}"


def errors(phase: Phase) -> str:
    parts = [f"HTTP {status} x{n}" for status, n in sorted(phase.http_failures.items())]  # e.g. "HTTP error (EOF) x4"
    if phase.accepted < phase.orders - sum(phase.http_failures.values()):
        parts.append(f"not captured {phase.orders - sum(phase.http_failures.values()) - phase.accepted}")
    if phase.picked < phase.accepted:
        parts.append(f"no pick task {phase.accepted - phase.picked}")
    if phase.delivered < phase.picked:
        parts.append(f"not delivered {phase.picked - phase.delivered}")
    if phase.dead_letters:
        parts.append(f"dead letters {phase.dead_letters}")
    return ", ".join(parts) or "0"


def host_took(phase: Phase) -> str:
    """The share of the machine's core-seconds in the phase that the host gave to other machines (steal)."""
    capacity = phase.wall * (os.cpu_count() or 1)
    return f"{100 * phase.steal / capacity:.0f}%" if capacity > 0 else "-"


def wal_per_order(phase: Phase) -> str:
    """The WAL the phase wrote per order, as records / kilobytes (a run from before it was measured shows -)."""
    if not phase.orders or not phase.wal_records:
        return "-"
    return f"{phase.wal_records / phase.orders:.0f} / {phase.wal_bytes / phase.orders / 1000:.1f} KB"


def loop_cell(holds: LoopHolds | None) -> str:
    return "-" if holds is None else f"{holds.over_100ms} / {holds.over_500ms} / {holds.held:.1f} s"


def verdict(phase: Phase) -> str:
    if phase.offered_rate is None:
        return "burst"
    return "saturated: " + "; ".join(phase.saturated) if phase.saturated else "kept up"


def phase_line(phase: Phase, run: Run) -> str:
    rate = "-" if phase.throughput is None else f"{phase.throughput:.1f}/s"
    return (
        f"  {phase.name}: {phase.orders} orders, drained {rate} ({ratio(run, phase.throughput)} of the order-sized"
        f" transaction's tps); to pick task p50/p95/p99/max {spread(phase.to_pick)}; to delivered"
        f" {spread(phase.to_delivered)}; by hop p50/p99 {by_hop(phase)}; errors {errors(phase)};"
        f" what follows waited {waited(phase)}; {verdict(phase)}"
    )


def waited(phase: Phase) -> str:
    """How long what follows the order path waited for it during the phase (a run before the counter: -)."""
    return "-" if phase.waited is None else f"{phase.waited:.0f} s"


def by_hop(phase: Phase) -> str:
    """The time to pick task split by the hop each service takes an order across, p50 / p99 of each."""
    shown = [f"{hop} {spread(phase.hops[hop], everything=False)}" for hop in HOPS if phase.hops.get(hop)]
    return ", ".join(shown) or "-"


def summary(run: Run) -> str:
    lines = ["anchors:"]
    lines += [f"  {a.what}: {a.figure:,.0f} {a.unit}" for a in run.anchors]
    lines.append("pipeline:")
    lines += [phase_line(p, run) for p in run.phases]
    return "\n".join(lines)


def busy_machine(run: Run) -> str | None:
    cores = os.cpu_count() or 1
    worst = max(run.load_before[0], run.load_after[0])
    if worst < 0.5 * cores:
        return None
    return (
        f"**Caveat: the machine was busy.** Load average {run.load_before[0]:.2f} before the run and"
        f" {run.load_after[0]:.2f} after it, on {cores} cores, from other work sharing this machine. The"
        " `elsewhere` column below shows how much CPU went to processes outside the pipeline during each phase;"
        " compare runs by their ratios to the same run's anchors rather than by absolute figures."
    )


def busy_host(run: Run) -> str | None:
    """A caveat when the host ran other machines for a noticeable share of the phases' time (steal)."""
    capacity = sum(p.wall for p in run.phases) * (os.cpu_count() or 1)
    share = sum(p.steal for p in run.phases) / capacity if capacity > 0 else 0.0
    if share < 0.05:
        return None
    return (
        f"**Caveat: the host was busy.** For {100 * share:.0f}% of the phases' core-seconds this virtual machine"
        " was ready to run while its host ran other machines (steal, the `host took` column below): every CPU and"
        " latency figure is slower by it. Compare runs by their ratios to the same run's anchors and by WAL per"
        " order, not by absolute figures."
    )


def markdown(run: Run) -> str:
    out = [f"# Benchmark {run.run_id}", ""]
    out.append(f"`{run.command}` (`make bench`), started {run.started_at}, commit `{run.commit}`.")
    if run.quick:
        out.append("A quick run, for trying the harness: short phases, small numbers.")
    out.append("")
    out += [f"- {key}: {value}" for key, value in run.machine.items()]
    out.append(
        f"- load average (1, 5, 15 min): before {', '.join(f'{x:.2f}' for x in run.load_before)};"
        f" after {', '.join(f'{x:.2f}' for x in run.load_after)}"
    )
    out.append(f"- settings: `{json.dumps(run.settings, sort_keys=True)}`")
    for caveat in (busy_machine(run), busy_host(run)):
        if caveat:
            out += ["", caveat]
    out += ["", f"![throughput against latency]({run.run_id}.png)", ""]

    out += ["## Anchors, in the same run", "", "| what | figure | settings |", "|---|---:|---|"]
    out += [f"| {a.what} | {a.figure:,.0f} {a.unit} | {a.settings} |" for a in run.anchors]

    out += ["", "## The pipeline", ""]
    out.append(
        "Drained: orders per second reaching their pick task; for a burst from its start to the last pick task,"
        " for a rate step between its first and its last pick task (the pace it was served at). `÷ txn`: that"
        " rate as a share of this run's order-sized transaction tps (absolute figures move from machine to"
        " machine; this ratio is what to compare). Latencies run from each order's due time (p50 / p95 / p99 /"
        " max); the sender's worst lateness against its own schedule is already inside them. What follows waited:"
        " the seconds the services' follow-up consumers paused what can wait while the order path was behind"
        " (`oms_yielded_to_the_order_path_seconds_total`, shared/backbone/peak.py). The burst with py-spy attached"
        " is slowed by the profiler pausing each process at every sample: not a measurement."
    )
    out += [
        "",
        "| phase | offered | orders | drained | ÷ txn | intake → pick task | intake → delivered | HTTP response"
        " p50 / p99 | errors | sender late | what follows waited | verdict |",
        "|---|---:|---:|---:|---:|---|---|---|---|---:|---:|---|",
    ]
    for p in run.phases:
        offered = "all at once" if p.offered_rate is None else f"{p.offered_rate:g}/s"
        drained = "-" if p.throughput is None else f"{p.throughput:.1f}/s"
        http = spread(p.http, everything=False) if p.kind in ("http", "shopify") else "-"
        out.append(
            f"| {p.name} | {offered} | {p.orders} | {drained} | {ratio(run, p.throughput)} | {spread(p.to_pick)}"
            f" | {spread(p.to_delivered)} | {http} | {errors(p)} | {duration(p.late_max)} | {waited(p)}"
            f" | {verdict(p)} |"
        )
    phases = [asdict(p) for p in run.phases]  # as the index reads them from the runs' JSON
    within = ", ".join(
        f"{kind} {highest_step(phases, kind, PICK_TASK_P99_TARGET)}" for kind in ("kafka", "http", "shopify")
    )
    out += [
        "",
        f"Every step up to these kept up with a p99 to pick task of {duration(PICK_TASK_P99_TARGET)} or less:"
        f" {within}.",
    ]

    out += ["", "## The order path, hop by hop", ""]
    out.append(
        "The time to pick task split where the order changes hands, each hop named by the service that takes the"
        " order across it: capture from the order's due time to its OrderValidated on Kafka, allocation from there"
        " to its first OrderAllocated, fulfillment from there to its last pick task (each record's timestamp, set"
        " when the service's outbox relay handed it to Kafka). A hop holds the service's wait for its batch to"
        " fill, its batch's transaction, its relay, and the next reader's fetch. p50 / p95 / p99 / max; the p99s"
        " of the hops need not add up to the p99 to pick task (one order is rarely slow at every hop)."
    )
    out += ["", "| phase | intake → pick task | " + " | ".join(HOPS) + " |", "|---|---|" + "---|" * len(HOPS)]
    for p in run.phases:
        if p.hops:
            out.append(f"| {p.name} | {spread(p.to_pick)} | " + " | ".join(spread(p.hops.get(h)) for h in HOPS) + " |")

    out += ["", "## CPU seconds per 1,000 orders", ""]
    out.append(
        "From /proc (utime + stime) before and after each phase, the phase lasting until every order was"
        " delivered and its messages sent. postgres: every process of the stack's cluster. `pipeline`: the"
        " system under test (services, simulator, Kafka, PostgreSQL, SMTP sink). bench: the load generator and"
        " observer (this process); tools: vegeta, and py-spy in the profiled burst. elsewhere: the rest of the"
        " machine's busy time meanwhile (other work on a shared machine). Host took: the share of the phase's"
        " core-seconds the virtual machine was ready to run but its host ran other machines (steal): a shared"
        " host slows every figure of CPU and latency, which is why runs are compared by their ratios. WAL per"
        " order: records and bytes the PostgreSQL cluster wrote during the phase, per order; unlike CPU seconds"
        " it does not move with the machine's speed."
    )
    columns = [*OURS, "pipeline", *COMPONENTS[len(OURS) :], "elsewhere"]
    out += [
        "",
        "| phase | " + " | ".join(columns) + " | host took | PostgreSQL commits per order | WAL per order | wall |",
    ]
    out.append("|---|" + "---:|" * (len(columns) + 4))
    for p in run.phases:
        values = [p.cpu_per_thousand(c) for c in OURS]
        ours = sum(v for v in values if v is not None)
        values += [ours, *(p.cpu_per_thousand(c) for c in COMPONENTS[len(OURS) :])]
        measured = sum(p.cpu.values())
        values.append((p.machine_busy - measured) * 1000 / p.orders if p.orders else None)
        shown = " | ".join("-" if v is None else f"{v:.1f}" for v in values)
        commits = f"{p.pg_transactions / p.orders:.1f}" if p.orders else "-"
        out.append(f"| {p.name} | {shown} | {host_took(p)} | {commits} | {wal_per_order(p)} | {p.wall:.0f} s |")

    if any(p.loop_holds for p in run.phases):
        out += ["", "## Event loops held", ""]
        out.append(
            "Each service times a 50 ms timer on its event loop (`oms_event_loop_held_seconds`). A tick that comes"
            " late is time one task held the loop while the others (the consumers, the relay, HTTP requests) waited:"
            " a batch's Python work, a collection, or the process waiting for a core. Per phase and service: the ticks"
            " over 0.1 s late / over 0.5 s late, and the lateness in all."
        )
        services = [s for s in OURS if any(s in p.loop_holds for p in run.phases)]
        out += ["", "| phase | " + " | ".join(services) + " |", "|---|" + "---:|" * len(services)]
        for p in run.phases:
            cells = [loop_cell(p.loop_holds.get(s)) for s in services]
            out.append(f"| {p.name} | " + " | ".join(cells) + " |")

    if run.profiles:
        profiled = next((p for p in run.phases if p.profiled), None)
        size = f"{profiled.orders} orders" if profiled else "orders"
        out += ["", f"## Where the time goes: py-spy during a burst of {size}", ""]
        out.append(
            "py-spy sampled each process 100 times a second, native frames included (uvloop and libuv, asyncpg's"
            " protocol and codecs, pydantic-core), counting only the thread that held the GIL (waiting is not"
            " work). Kinds of work: by the innermost frame whose file says what it is (interpreter internals count"
            " for their caller). Own time: the innermost frame itself. Called from: the innermost project function"
            " on the stack, i.e. the project code that did the work or made the call that did."
        )
        for profile in run.profiles:
            out += [
                "",
                f"### {profile.process}: {profile.samples:,} samples ([speedscope profile]({profile.file}))",
                "",
            ]
            kinds = ", ".join(f"{name} {share:.0%}" for name, share in profile.categories[:CATEGORIES_SHOWN])
            out.append(f"- kinds of work: {kinds}")
            out.append("- own time: " + ", ".join(f"`{name}` {share:.0%}" for name, share in profile.top_self))
            out.append("- called from: " + ", ".join(f"`{name}` {share:.0%}" for name, share in profile.top_project))

    out += ["", "## How it was measured", ""]
    out += [
        "- Intake time: the order's due time in the open-loop schedule (burst: all due at the start). Over Kafka"
        " the bench's producer (principal channel-adapters, idempotent, linger 5 ms) publishes each order on"
        " `oms.orders.submitted` at its due time; over HTTP vegeta posts one order per request at a constant rate"
        " with the webshop channel's API key, adding workers rather than waiting for answers; as Shopify's webhook"
        " vegeta delivers the same orders as `orders/create` bodies from the development shop, each with its own"
        " Shopify order id and webhook id, signed as Shopify signs them.",
        "- Pick task time: the timestamp of the order's (last) `PickTaskReleased` record on"
        " `oms.warehouse.pick-tasks`, set by fulfillment's outbox relay when it hands the task to Kafka, after"
        " the handler's transaction committed: when the warehouse can have it. `pick_tasks.created_at` is taken"
        " before that commit and would leave out the commit and the relay; the observer's read time would add"
        " its own lag. The observer reads these topics once a phase's orders are sent, not while they are: the"
        " records' timestamps are the same either way, and its reading would take CPU from the pipeline.",
        "- Delivered time: the timestamp of the `OrderDelivered` record on `oms.fulfillment.events`. It includes"
        " the simulator's deliberate waits (by default 0.2 s before picking, packing and each of two carrier"
        " updates: 0.8 s).",
        "- A rate step is saturated when it drained less than 90% of the offered rate, its p99 to pick task"
        " exceeded the limit in the settings, or more than 1% of its orders failed; the steps stop at the first"
        " saturated one. Each phase waits until its orders are delivered, their messages sent and every service"
        " has read all it was sent (or the drain timeout) before the next begins: at a peak what follows the order"
        " path waits, and its CPU is the phase's.",
        "- Orders: valid, about 1 KB of JSON with 4 to 7 lines, stock plentiful (one pick task each).",
    ]
    if run.notes:
        out += ["", "## Notes", ""]
        out += [f"- {note}" for note in run.notes]
    return "\n".join(out) + "\n"


def index(runs: list[dict[str, Any]]) -> str:
    """docs/benchmarks/README.md: every run in the folder, newest first, with its headline figures."""
    out = ["# Benchmarks", ""]
    out.append(
        "Written by `make bench` (`python -m deploy.bench`; `--quick` for a short trial, `--help` for the"
        " options). Each run's report says what was measured and how; `latest.png` is the latest full run's chart."
        " `--instances N` runs N instances of every service: [scaling.md](scaling.md) has 1, 2 and 4 on this"
        " machine and what saturates first as machines are added. [findings.md](findings.md): where the time"
        " went and what changed because of it, with the runs before and after. `python -m deploy.bench.decoding`"
        " times decoding the records a stack holds, topic by topic, as the services decode them."
    )
    out += [
        "",
        "| run | commit | order txn tps | burst drained | ÷ txn | highest Kafka step kept up"
        f" | Kafka steps up to this with p99 to pick task ≤ {duration(PICK_TASK_P99_TARGET)}"
        " | highest HTTP step kept up | highest Shopify step kept up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in sorted(runs, key=lambda r: str(r["started_at"]), reverse=True):
        txn = next((a["figure"] for a in run["anchors"] if a["what"] == ORDER_TRANSACTION), None)
        burst = next((p for p in run["phases"] if p["kind"] == "burst" and not p["profiled"]), None)
        drained = burst["throughput"] if burst else None

        phases = run["phases"]
        share = f"{drained / txn:.1%}" if drained and txn else "-"
        out.append(
            f"| [{run['run_id']}]({run['run_id']}.md) | `{run['commit']}` | {txn or 0:,.0f} |"
            f" {(drained or 0):.1f}/s | {share} | {highest_step(phases, 'kafka')} |"
            f" {highest_step(phases, 'kafka', PICK_TASK_P99_TARGET)} | {highest_step(phases, 'http')} |"
            f" {highest_step(phases, 'shopify')} |"
        )
    return "\n".join(out) + "\n"


def highest_step(phases: list[dict[str, Any]], kind: str, p99_to_pick: float | None = None) -> str:
    """The highest rate step of a kind (phases as in the JSON) that kept up; with `p99_to_pick`, the highest up to
    which every step kept up with its p99 from intake to pick task within it (a slower step above one that missed
    does not count). "none" when no step did, "not run" when there was none."""
    steps = sorted((p for p in phases if p["kind"] == kind), key=lambda p: float(p["offered_rate"]))

    def held(step: dict[str, Any]) -> bool:
        p99 = (step["to_pick"] or {}).get("p99", math.inf)
        return not step["saturated"] and (p99_to_pick is None or p99 <= p99_to_pick)

    within = itertools.takewhile(held, steps) if p99_to_pick is not None else filter(held, steps)
    rates = [step["offered_rate"] for step in within]
    return f"{max(rates):g}/s" if rates else "none" if steps else "not run"


def write(run: Run, output: Path) -> Path:
    """The report, its JSON and its chart into `output`, and the folder's index; returns the report's path."""
    output.mkdir(parents=True, exist_ok=True)
    report = output / f"{run.run_id}.md"
    (output / f"{run.run_id}.json").write_text(json.dumps(run.to_json(), indent=1) + "\n")
    chart.draw(run, output / f"{run.run_id}.png")
    report.write_text(markdown(run))
    runs = [json.loads(path.read_text()) for path in sorted(output.glob("*.json"))]
    (output / "README.md").write_text(index(runs))
    return report
