"""The arithmetic of the benchmark, free of I/O: when each order is due (open loop), latency spreads,
throughput, whether a rate step saturated the pipeline, CPU time from /proc, and the figures in the output
of pgbench and Kafka's ProducerPerformance."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from deploy.local.demo import percentile
from deploy.local.scrape import Samples, buckets, count_of, delta, total

Key = TypeVar("Key")


@dataclass(frozen=True)
class Spread:
    """Percentiles of a set of latencies, in seconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread | None:
        ordered = sorted(values)
        if not ordered:
            return None
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99), ordered[-1])


def due_offsets(count: int, rate: float | None) -> list[float]:
    """Seconds after the start at which each order is due: all at once for a burst (no rate), else one every
    1/rate seconds whatever happens to the ones before (open loop: a stall delays no later order's due time)."""
    if rate is None:
        return [0.0] * count
    if rate <= 0:
        raise ValueError("a rate step needs a positive rate")
    return [i / rate for i in range(count)]


def latencies(due: Mapping[Key, float], reached: Mapping[Key, float]) -> list[float]:
    """Time from each order's due time to when it reached a step, for the orders that reached it."""
    return [reached[key] - at for key, at in due.items() if key in reached]


# The order path's hops, each named by the service that takes an order across it: from the order's due time
# to its OrderValidated (capture), to its first OrderAllocated (allocation), to its last pick task (fulfillment).
HOPS = ("capture", "allocation", "fulfillment")


def hops(due: Mapping[Key, float], *reached: Mapping[Key, float]) -> dict[str, list[float]]:
    """Each hop's time for the orders that reached every step: `reached` is when each order got to the end of
    each hop, in the order of HOPS, so the hops of one order add up to its time to pick task."""
    if len(reached) != len(HOPS):
        raise ValueError(f"one step per hop: {', '.join(HOPS)}")
    found: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for key, at in due.items():
        if not all(key in step for step in reached):
            continue
        times = [step[key] for step in reached]
        for hop, start, end in zip(HOPS, [at, *times[:-1]], times, strict=True):
            found[hop].append(end - start)
    return found


def drain_rate(count: int, started: float, last: float | None) -> float | None:
    """Orders per second from the first order's due time to the last order reaching the step."""
    if count == 0 or last is None or last <= started:
        return None
    return count / (last - started)


def completion_rate(times: Iterable[float]) -> float | None:
    """Orders per second reaching a step between the first and the last to reach it: the pace a rate step
    was served at, whatever latency the step began with (the last order is due one interval before the end)."""
    ordered = sorted(times)
    if len(ordered) < 2 or ordered[-1] <= ordered[0]:
        return None
    return (len(ordered) - 1) / (ordered[-1] - ordered[0])


@dataclass(frozen=True)
class Limits:
    """When a rate step counts as beyond what the pipeline sustains."""

    kept_share: float = 0.9  # of the offered rate, served between the first and the last pick task
    p99_seconds: float = 5.0  # intake to pick task
    error_share: float = 0.01


def saturation(
    offered: float, achieved: float | None, to_pick_p99: float | None, errors: int, orders: int, limits: Limits
) -> list[str]:
    """Why the step is past saturation (nothing: the pipeline kept up)."""
    reasons = []
    if achieved is None or achieved < limits.kept_share * offered:
        shown = "nothing" if achieved is None else f"{achieved:.1f}/s"
        reasons.append(f"drained {shown} of {offered:g}/s offered")
    if to_pick_p99 is None or to_pick_p99 > limits.p99_seconds:
        reasons.append(f"p99 to pick task over {limits.p99_seconds:g} s")
    if orders and errors / orders > limits.error_share:
        reasons.append(f"{errors} errors in {orders} orders")
    return reasons


# --- CPU time from /proc --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessTimes:
    """One /proc/<pid>/stat line: parent pid, CPU time of the process and of its reaped children (s), and its
    niceness (its CPU priority: higher runs behind)."""

    ppid: int
    own: float
    children: float
    niceness: int = 0


def process_times(stat: str, ticks_per_second: int) -> ProcessTimes:
    # The command name is in parentheses and may hold spaces or parentheses: count fields after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    own, children = (utime + stime) / ticks_per_second, (cutime + cstime) / ticks_per_second
    return ProcessTimes(int(fields[1]), own, children, int(fields[16]))


def machine_busy(proc_stat: str, ticks_per_second: int) -> float:
    """CPU seconds all cores spent on anything but idling or waiting for I/O, since boot (/proc/stat); time the
    hypervisor gave to other machines (steal) is not counted: nothing here ran then."""
    values = [int(v) for v in proc_stat.splitlines()[0].split()[1:]]
    idle, iowait = values[3], values[4] if len(values) > 4 else 0
    # guest time is already counted in user time
    return (sum(values[:7]) - idle - iowait) / ticks_per_second


def machine_steal(proc_stat: str, ticks_per_second: int) -> float:
    """CPU seconds this virtual machine was ready to run but the host ran something else, since boot (/proc/stat).
    On a shared host it slows everything measured, however quiet the machine itself is."""
    values = [int(v) for v in proc_stat.splitlines()[0].split()[1:]]
    return (values[7] if len(values) > 7 else 0) / ticks_per_second


def per_thousand(before: Mapping[str, float], after: Mapping[str, float], orders: int) -> dict[str, float]:
    """CPU seconds per 1,000 orders of each component between two snapshots."""
    if orders == 0:
        return {}
    return {name: (after[name] - before.get(name, 0.0)) * 1000 / orders for name in after}


# --- tool output ----------------------------------------------------------------------------------------

PGBENCH_TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE)
PRODUCER_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, "
    r"(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)


LOOP_HELD = "oms_event_loop_held_seconds"


@dataclass(frozen=True)
class LoopHolds:
    """A service's event loop during a phase: its watch's ticks (one every 50 ms while the loop is free), those that
    came over 0.1 s and over 0.5 s late, and the lateness in all (s)."""

    ticks: int
    over_100ms: int
    over_500ms: int
    held: float


def loop_holds(before: Mapping[str, Samples], after: Mapping[str, Samples]) -> dict[str, LoopHolds]:
    """Each service's event loop holds between two scrapes of its watch (`oms_event_loop_held_seconds`)."""
    holds = {}
    for service, samples in after.items():
        change = delta(samples, before.get(service, {}))
        cumulative = buckets(change, LOOP_HELD)
        ticks, within = count_of(cumulative), dict(cumulative)
        over = {bound: ticks - int(within.get(bound, 0)) for bound in (0.1, 0.5)}
        holds[service] = LoopHolds(ticks, over[0.1], over[0.5], total(change, f"{LOOP_HELD}_sum"))
    return holds


YIELDED = "oms_yielded_to_the_order_path_seconds_total"


def waited(before: Mapping[str, Samples], after: Mapping[str, Samples], instances: Mapping[str, int]) -> float:
    """Seconds what follows the order path waited between two scrapes: the longest of any service's (each service's
    instances together, so per instance), as every service's watch waits on the same reports of the backlog."""
    return max(
        (
            total(delta(samples, before.get(service, {})), YIELDED) / max(1, instances.get(service, 1))
            for service, samples in after.items()
        ),
        default=0.0,
    )


def pgbench_tps(output: str) -> float:
    found = PGBENCH_TPS.search(output)
    if found is None:
        raise ValueError(f"no tps in pgbench output:\n{output[-2000:]}")
    return float(found.group(1))


@dataclass(frozen=True)
class ProducerFigures:
    records: int
    records_per_second: float
    mb_per_second: float
    avg_latency_ms: float
    p50_ms: float
    p99_ms: float


def producer_performance(output: str) -> ProducerFigures:
    """The final summary line (ProducerPerformance also prints interim lines without percentiles)."""
    found = PRODUCER_SUMMARY.findall(output)
    if not found:
        raise ValueError(f"no summary in ProducerPerformance output:\n{output[-2000:]}")
    records, rate, mb, avg, _max, p50, _p95, p99 = found[-1]
    return ProducerFigures(int(records), float(rate), float(mb), float(avg), float(p50), float(p99))
