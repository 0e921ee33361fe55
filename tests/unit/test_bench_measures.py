"""The benchmark's arithmetic and reporting, without a stack: the open-loop schedule, latency from due times,
percentiles, throughput, saturation, CPU from /proc, tool output, profile summaries and the report."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from deploy.bench import load, measures, profiles, report
from deploy.bench.cpu import Pipeline, times
from deploy.bench.results import ORDER_TRANSACTION, Anchor, Phase, Run
from deploy.bench.run import INSTANCE_PORT_SHIFT, more_instances
from deploy.local.scrape import Samples
from deploy.local.settings import LocalStack
from deploy.local.supervisor import group_niceness


def test_open_loop_schedule_keeps_due_times_whatever_the_pipeline_does() -> None:
    # given a rate step of 50 orders/s, and a burst
    step, burst = measures.due_offsets(5, 50.0), measures.due_offsets(3, None)
    # then each order is due one interval after the one before, and a burst's orders all at the start
    assert step == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert burst == [0.0, 0.0, 0.0]
    # and a stall shows as latency from the due time: the pipeline stopped for 2 s after the first order
    due = {"a": 100.0, "b": 100.02, "c": 100.04}
    reached = {"a": 100.1, "b": 102.1, "c": 102.1}  # "b" and "c" waited behind the stall
    assert [round(x, 2) for x in measures.latencies(due, reached)] == [0.1, 2.08, 2.06]


def test_the_time_to_pick_task_splits_into_the_order_paths_hops() -> None:
    # given two orders due at 100 s, validated, allocated and given their pick task at these times, and a third
    # that has no pick task yet
    due = {"a": 100.0, "b": 100.0, "c": 100.0}
    validated = {"a": 100.1, "b": 100.3, "c": 100.2}
    allocated = {"a": 100.25, "b": 100.4, "c": 100.5}
    tasks = {"a": 100.3, "b": 100.6}
    found = measures.hops(due, validated, allocated, tasks)
    # then each hop runs from where the one before ended, and an order's hops add up to its time to pick task
    assert {hop: [round(t, 2) for t in times] for hop, times in found.items()} == {
        "capture": [0.1, 0.3],
        "allocation": [0.15, 0.1],
        "fulfillment": [0.05, 0.2],
    }
    assert [round(sum(times), 2) for times in zip(*found.values(), strict=True)] == [0.3, 0.6]
    with pytest.raises(ValueError, match="one step per hop"):
        measures.hops(due, validated, tasks)


def test_spread_percentiles_and_rates() -> None:
    spread = measures.Spread.of(float(v) for v in range(1, 102))  # 1..101
    assert spread == measures.Spread(101, 51.0, 96.0, 100.0, 101.0)
    assert measures.Spread.of([]) is None
    # a burst of 300 orders whose last pick task came 4 s after the start drained 75 orders/s
    assert measures.drain_rate(300, 1000.0, 1004.0) == 75.0
    # a step served one order every 20 ms between its first and last pick task ran at 50/s
    assert measures.completion_rate([10.0 + i * 0.02 for i in range(101)]) == pytest.approx(50.0)
    assert measures.completion_rate([10.0]) is None


def test_a_step_is_saturated_when_it_falls_behind_or_its_tail_grows() -> None:
    limits = measures.Limits(kept_share=0.9, p99_seconds=5.0, error_share=0.01)
    assert measures.saturation(50, 49.0, 0.8, 0, 1500, limits) == []
    behind = measures.saturation(100, 62.0, 14.0, 0, 3000, limits)
    assert behind == ["drained 62.0/s of 100/s offered", "p99 to pick task over 5 s"]
    assert measures.saturation(50, 50.0, 1.0, 40, 1500, limits) == ["40 errors in 1500 orders"]


def test_cpu_time_read_from_proc() -> None:
    # given a process whose name holds spaces and parentheses (fields counted from the last ')')
    stat = "4242 (postgres: oms (x) idle) S 17 4242 4242 0 -1 4194560 500 0 0 0 250 50 30 20 20 0 1 0 100 0 0"
    times = measures.process_times(stat, 100)
    assert (times.ppid, times.own, times.children, times.niceness) == (17, 3.0, 0.5, 0)
    behind = stat.replace(" 20 20 0 1 ", " 20 39 19 1 ")  # priority 39: niceness 19
    assert measures.process_times(behind, 100).niceness == 19
    # the machine's busy time leaves out idle and I/O wait
    assert measures.machine_busy("cpu  100 5 50 1000 40 3 2 0 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n", 100) == 1.6
    assert measures.per_thousand({"capture": 1.0}, {"capture": 4.0}, 500) == {"capture": 6.0}


def test_figures_read_from_pgbench_and_producer_performance() -> None:
    pgbench = (
        "number of failed transactions: 0 (0.000%)\nlatency average = 2.406 ms\n"
        "tps = 3325.458223 (without initial connection time)\n"
    )
    assert measures.pgbench_tps(pgbench) == 3325.458223
    producer = (
        "9286 records sent, 1855.0 records/sec (1.81 MB/sec), 2201.7 ms avg latency, 3512.0 ms max latency.\n"
        "50000 records sent, 4879.0 records/sec (4.76 MB/sec), 4159.23 ms avg latency, 5906.00 ms max latency,"
        " 4494 ms 50th, 5664 ms 95th, 5835 ms 99th, 5885 ms 99.9th.\n"
    )
    figures = measures.producer_performance(producer)
    assert (figures.records, figures.records_per_second, figures.p99_ms) == (50000, 4879.0, 5835.0)
    with pytest.raises(ValueError, match="no tps"):
        measures.pgbench_tps("connection refused")


def test_http_results_get_their_due_time_from_their_sequence_number() -> None:
    # given vegeta's results at 10/s: the third request went out 0.5 s late, the second was refused, the fourth
    # lost its connection before any answer
    def result(seq: int, sent: str, code: int, body: dict[str, str] | None, error: str = "") -> dict[str, object]:
        encoded = base64.b64encode(json.dumps(body).encode()).decode() if body else ""
        return {"seq": seq, "timestamp": sent, "code": code, "latency": 20_000_000, "body": encoded, "error": error}

    results = [
        result(0, "2026-12-02T16:00:00.000000001Z", 202, {"order_id": "o-0"}),
        result(1, "2026-12-02T16:00:00.100000000Z", 429, None),
        result(2, "2026-12-02T16:00:00.700000000Z", 202, {"order_id": "o-2"}),
        result(3, "2026-12-02T16:00:00.300000000Z", 0, None, 'Post "http://127.0.0.1:8080/v1/orders": EOF'),
    ]
    responses = load.responses(results, 10.0)
    # then each is due at the start + seq / rate, the lateness is visible, and so is why one got no answer
    assert [r.order_id for r in responses] == ["o-0", None, "o-2", None]
    assert [r.status for r in responses] == ["202", "429", "202", "error (EOF)"]
    assert responses[2].sent - responses[2].due == pytest.approx(0.5)
    assert responses[0].latency == 0.02


def test_profile_summary_names_the_work_and_the_project_code_behind_it(tmp_path: Path) -> None:
    repo = tmp_path
    frames = [
        {"name": "main", "file": str(repo / "services/capture/app.py")},
        {"name": "insert_order", "file": str(repo / "services/capture/repository.py")},
        {"name": "Connection._do_execute", "file": "/v/site-packages/asyncpg/connection.py"},
        {"name": "Py_DECREF", "file": "/usr/include/python3.11/object.h"},
        {"name": "model_validate", "file": "/v/site-packages/pydantic/main.py"},
        {"name": "write", "file": "/usr/lib/x86_64-linux-gnu/libc.so.6"},
    ]
    samples = [[0, 1, 2, 3], [0, 1, 2], [0, 4], [0, 1, 5]]
    document = {"shared": {"frames": frames}, "profiles": [{"samples": samples, "weights": [0.01] * 4}]}
    summary = profiles.summarise(document, "capture", "profiles/x/capture.speedscope.json", repo)
    assert summary.samples == 4
    assert dict(summary.categories) == {
        "PostgreSQL client (asyncpg, its protocol and codecs)": 0.5,  # interpreter internals count for the caller
        "pydantic validation and serialisation": 0.25,
        "system calls (socket reads and writes)": 0.25,
    }
    assert summary.top_project[0] == ("insert_order (services/capture/repository.py)", 0.75)


def test_report_shows_each_phase_as_a_share_of_the_same_runs_order_transaction() -> None:
    run = Run(
        "20261202-1700-abc", "2026-12-02T17:00:00+00:00", "python -m deploy.bench", False, "abc", {}, {}, (100.0, 3, 3)
    )
    run.anchors.append(Anchor(ORDER_TRANSACTION, 2000.0, "tps", "8 clients"))
    burst = Phase("burst", "burst", None, 3000, accepted=3000, picked=3000, delivered=3000, throughput=60.0)
    burst.to_pick = measures.Spread(3000, 20.0, 45.0, 48.0, 50.0)
    burst.cpu = {"capture": 30.0, "postgres": 60.0}
    burst.machine_busy = 120.0
    burst.wall, burst.steal = 50.0, 20.0  # of 50 s on every core, the host took 20 core-seconds
    burst.wal_records, burst.wal_bytes = 1_200_000, 174_000_000
    step = Phase("kafka 100/s", "kafka", 100.0, 3000, accepted=3000, picked=2990, delivered=2990, throughput=62.0)
    step.saturated = ["drained 62.0/s of 100/s offered"]
    step.to_pick = measures.Spread(2990, 0.3, 0.5, 0.7, 0.9)
    step.hops = {hop: measures.Spread(2990, 0.1, 0.2, 0.3, 0.4) for hop in measures.HOPS}
    run.phases += [burst, step]
    text = report.markdown(run)
    hop = "100 ms / 200 ms / 300 ms / 400 ms"
    assert f"| kafka 100/s | 300 ms / 500 ms / 700 ms / 900 ms | {hop} | {hop} | {hop} |" in text
    by_hop = text.split("## The order path, hop by hop")[1].split("## CPU seconds")[0]
    assert "| kafka 100/s |" in by_hop and "| burst |" not in by_hop  # the burst's hops not measured: no row
    assert "capture 100 ms / 300 ms, allocation 100 ms / 300 ms" in report.phase_line(step, run)
    assert "| burst | all at once | 3000 | 60.0/s | 3.0% | 20.00 s / 45.00 s / 48.00 s / 50.00 s |" in text
    assert "no pick task 10" in text and "saturated: drained 62.0/s of 100/s offered" in text
    assert "Caveat: the machine was busy" in text  # load average 100 before the run
    cores = os.cpu_count() or 1
    host_took = f"{100 * 20.0 / (50.0 * cores):.0f}%"
    assert f"| {host_took} | 0.0 | 400 / 58.0 KB | 50 s |" in text  # the burst's row ends with host, commits, WAL
    assert ("Caveat: the host was busy" in text) == (20.0 / (50.0 * cores) >= 0.05)
    index = report.index([json.loads(json.dumps(run.to_json()))])
    # Kafka saturated, so no step within the latency either; no HTTP, no Shopify
    assert "| 2,000 | 60.0/s | 3.0% | none | none | not run | not run |" in index
    assert "p99 to pick task of 250 ms or less: kafka none, http not run, shopify not run." in text


def test_the_steps_within_the_latency_target_kept_up_and_held_their_p99_from_the_lowest_up() -> None:
    def step(rate: float, p99: float, saturated: bool = False) -> dict[str, object]:
        return {
            "kind": "kafka",
            "offered_rate": rate,
            "saturated": ["late"] if saturated else [],
            "to_pick": {"p99": p99},
        }

    # given steps that kept up with p99s of 120, 240, 260 and 200 ms, and one that did not keep up
    phases = [step(400, 0.2), step(50, 0.12), step(200, 0.26), step(100, 0.24), step(800, 0.1, saturated=True)]
    # then every step up to 100/s held 250 ms: the 400/s step's 200 ms comes after the 200/s step missed it
    assert report.highest_step(phases, "kafka", 0.25) == "100/s"
    assert report.highest_step(phases, "kafka", 0.3) == "400/s"  # the saturated 800/s step never counts
    assert report.highest_step(phases, "kafka", 0.1) == "none"
    assert report.highest_step(phases, "kafka") == "400/s"  # kept up, whatever its latency
    assert report.highest_step(phases, "http", 0.25) == "not run"


def test_more_instances_of_every_service_share_their_groups_and_count_as_their_service() -> None:
    # given a stack, and four instances of every service asked for
    local = LocalStack.from_env()
    more = more_instances(local, 4)
    # then instances 2 to 4 of each service run its module on ports of their own, in the same consumer group
    capture = [p for p in more if p.module == "services.capture"]
    assert [p.name for p in capture] == ["capture-2", "capture-3", "capture-4"]
    assert [p.http_port for p in capture] == [local.ports.http["capture"] + INSTANCE_PORT_SHIFT * n for n in (1, 2, 3)]
    ports = [p.http_port for p in more] + list(local.ports.http.values())
    assert len(set(ports)) == len(ports)
    assert {p.env["OMS_INSTANCE"] for p in capture} == {"2", "3", "4"}
    # and the CPU of a service's instances is counted as that service's
    own = times(os.getpid())
    assert own is not None
    seconds = Pipeline({"capture": os.getpid(), "capture-2": os.getpid()}, os.getpid()).snapshot()
    assert "capture-2" not in seconds
    assert seconds["capture"] >= 2 * own.own
    # and each process's CPU priority is read as it runs, PostgreSQL's from its postmaster, with its session's
    # group's where the kernel groups sessions
    priorities = Pipeline({"capture": os.getpid()}, os.getpid()).priorities()
    group = group_niceness(os.getpid())
    shown = f"{os.getpriority(os.PRIO_PROCESS, 0)}" + ("" if group is None else f"/{group}")
    assert priorities == {"capture": shown, "postgres": shown}


def test_time_the_host_gave_other_machines_is_steal_not_work() -> None:
    proc_stat = "cpu  100 5 50 1000 40 3 2 30 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n"
    assert (measures.machine_busy(proc_stat, 100), measures.machine_steal(proc_stat, 100)) == (1.6, 0.3)


def test_a_phases_event_loop_holds_are_the_change_of_each_services_watch_and_show_in_the_report() -> None:
    def watch(counts: dict[str, float], held: float) -> Samples:
        service: tuple[tuple[str, str], ...] = (("service", "capture"),)
        samples: Samples = {(f"{measures.LOOP_HELD}_bucket", (("le", le), *service)): n for le, n in counts.items()}
        return {**samples, (f"{measures.LOOP_HELD}_sum", service): held}

    before = {"capture": watch({"0.05": 90, "0.1": 95, "0.5": 99, "+Inf": 100}, 3.0)}
    # 400 ticks in the phase: 10 late by 0.05-0.1 s, 6 by 0.1-0.5 s, 4 by more; 2.5 s of lateness in all
    after = {"capture": watch({"0.05": 470, "0.1": 485, "0.5": 495, "+Inf": 500}, 5.5), "kpis": {}}
    holds = measures.loop_holds(before, after)
    assert holds["capture"] == measures.LoopHolds(ticks=400, over_100ms=10, over_500ms=4, held=2.5)
    assert holds["kpis"] == measures.LoopHolds(0, 0, 0, 0.0)  # no watch scraped: nothing held
    run = Run("r", "2026-12-05T17:00:00+00:00", "python -m deploy.bench", False, "abc", {}, {}, (0.1, 0.1, 0.1))
    step = Phase("kafka 200/s", "kafka", 200.0, 9000, loop_holds=holds)
    run.phases.append(step)
    assert "| kafka 200/s | 10 / 4 / 2.5 s |" in report.markdown(run).split("## Event loops held")[1]


def test_what_follows_waited_is_the_longest_wait_of_any_service_per_instance_and_shows_in_the_report() -> None:
    def watch(service: str, seconds: float) -> Samples:
        return {(measures.YIELDED, (("service", service),)): seconds}

    before = {"notifications": watch("notifications", 10.0), "kpis": watch("kpis", 4.0), "capture": {}}
    # two notifications instances waited 7 s each; the KPIs' one 6.5 s; capture's counter begins with the phase
    after = {"notifications": watch("notifications", 24.0), "kpis": watch("kpis", 10.5), "capture": {}}
    assert measures.waited(before, after, {"notifications": 2, "kpis": 1, "capture": 1}) == 7.0
    assert measures.waited({}, {}, {}) == 0.0

    run = Run("r", "2026-12-06T10:00:00+00:00", "python -m deploy.bench", False, "abc", {}, {}, (0.1, 0.1, 0.1))
    step = Phase("kafka 200/s", "kafka", 200.0, 12000, waited=7.0)
    older = Phase("kafka 400/s", "kafka", 400.0, 24000)  # a run's JSON from before the counter
    run.phases += [step, older]
    table = report.markdown(run).split("## The pipeline")[1]
    assert "| 0 ms | 7 s | kept up |" in table and "| 0 ms | - | kept up |" in table
    assert "what follows waited 7 s; kept up" in report.phase_line(step, run)


class _Librdkafka:
    """librdkafka's Python module as far as `load.ready_producer` uses it: its producer hands its statistics over
    at each poll, here the producer id's states in the order given (the last repeated)."""

    def __init__(self, states: list[str]) -> None:
        self.states = states
        self.polls = 0

    def Producer(self, config: dict[str, object]) -> _Librdkafka:
        self.config = config
        return self

    def list_topics(self, topic: str, timeout: float) -> None:
        self.listed = topic

    def poll(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.01))
        state = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        stats_cb = self.config["stats_cb"]
        assert callable(stats_cb)
        stats_cb(json.dumps({"eos": {"idemp_state": state}}))


def test_the_load_generator_sends_nothing_before_its_producer_has_its_id() -> None:
    # given a producer that waits for its id (as librdkafka's does when it asked before its connection was up)
    kafka = _Librdkafka(["RequestPID", "WaitTransport", "WaitTransport", "Assigned"])
    # when the load generator makes its producer
    producer = load.ready_producer(kafka, {"enable.idempotence": True}, timeout=5.0)
    # then it is handed over only once it has its id, connected to the intake topic, asking for its statistics
    assert producer is kafka and kafka.polls == 4
    assert kafka.listed == "oms.orders.submitted"
    assert kafka.config["enable.idempotence"] is True and kafka.config["statistics.interval.ms"] == 100


def test_the_load_generator_says_so_when_its_producer_never_gets_an_id() -> None:
    kafka = _Librdkafka(["WaitTransport"])
    with pytest.raises(RuntimeError, match=r"no producer id in 0\.3 s: \[.WaitTransport.\]"):
        load.ready_producer(kafka, {}, timeout=0.3)
