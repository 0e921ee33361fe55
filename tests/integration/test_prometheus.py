"""A real Prometheus (Debian's package) scraping the running services with the project's scrape config:
orders run through the pipeline show up in the funnel counters and latency histograms it stores, a
stopped service shows as down, and every query of the Grafana dashboard parses and names only metrics the
services export."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from deploy.local import scrape
from deploy.prometheus.local import Prometheus, PrometheusError
from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import channel_key, new_skus, seed, wait_status
from tests.waiting import eventually, eventually_sync

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "oms-pipeline.json"
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SERVICES = tuple(LOCAL.ports.http)
# Grafana's variables, replaced by what Grafana would put there.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(pipeline, tmp_path_factory):
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), free_port(), LOCAL.ports.http, scrape_interval="1s")
    server.start()
    try:
        eventually_sync(lambda: server.value('count(up{job=~"oms-.+"} == 1)'), lambda n: n == len(SERVICES))
        yield server
    finally:
        server.stop()


def total(server: Prometheus, expr: str) -> float:
    return server.value(f"({expr}) or vector(0)") or 0.0


FUNNEL = {
    "allocated": "sum(oms_orders_allocated_total)",
    "shipments shipped": "sum(oms_shipments_shipped_total)",
    "delivered": "sum(oms_orders_delivered_total)",
    "reached delivered": 'sum(oms_order_status_changes_total{status="delivered"})',
    "pick task latency observed": "sum(oms_order_intake_to_pick_task_seconds_count)",
    "delivery latency observed": 'sum(oms_order_intake_to_delivered_seconds_bucket{le="+Inf"})',
}


async def test_orders_through_the_pipeline_show_in_the_funnel_and_latency_histograms(prometheus, http, db) -> None:
    # given a catalogue with stock, and what Prometheus has recorded so far
    (sku,) = new_skus(1)
    await seed([("ams", sku, 20)])
    channel = f"prom-{uuid.uuid4().hex[:6]}"  # a channel of its own: its counters count only these orders
    before = {name: total(prometheus, expr) for name, expr in FUNNEL.items()}

    # when four good orders and one for an unknown SKU go through
    good = [order_document([(sku, 1)], channel=channel) for _ in range(4)]
    bad = order_document([("NOT-IN-CATALOGUE", 1)], channel=channel)
    key = await channel_key(db, channel)
    ids = [(await http.post("/v1/orders", json=doc, auth=key)).json()["order_id"] for doc in [*good, bad]]
    for order_id in ids[:4]:
        await wait_status(http, order_id, {"delivered"})
    await wait_status(http, ids[4], {"rejected"})

    # then Prometheus's counters show them: exactly, where the channel tells them apart
    def by_channel(metric: str) -> float:
        return total(prometheus, f'sum({metric}{{channel="{channel}"}})')

    await eventually(lambda: by_channel("oms_orders_received_total"), lambda n: n == 5)
    assert by_channel("oms_orders_validated_total") == 4
    assert by_channel("oms_orders_rejected_total") == 1
    # and at least these four everywhere else (earlier tests' orders may still be finishing)
    grown = await eventually(
        lambda: {name: total(prometheus, expr) - before[name] for name, expr in FUNNEL.items()},
        lambda delta: all(n >= 4 for n in delta.values()),
    )
    assert all(n >= 4 for n in grown.values()), grown

    # and the latency histograms give percentiles in a plausible range
    for histogram in ("oms_order_intake_to_pick_task_seconds", "oms_order_intake_to_delivered_seconds"):
        p95 = prometheus.value(f"histogram_quantile(0.95, sum by (le) (increase({histogram}_bucket[5m])))")
        assert p95 is not None and 0 < p95 < 60, (histogram, p95)

    # and the consumer lag is reported per partition (bounded: one series per partition allocation reads)
    partitions = sum(topic.partitions for topic in topics.inputs("allocation"))
    assert prometheus.value('count(oms_consumer_lag_messages{job="oms-allocation"})') == partitions
    assert prometheus.value('max(oms_db_pool_max_connections{job="oms-capture"})') is not None


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel.get("targets", [])]


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def exported_metrics() -> set[str]:
    names: set[str] = set()
    for port in LOCAL.ports.http.values():
        names |= scrape.exported_names(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    return names


def test_every_dashboard_query_parses_and_names_only_exported_metrics(prometheus) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    exported = exported_metrics() | {"up"}
    for title, expr in queries:
        try:
            prometheus.query(grafana_to_promql(expr))
        except PrometheusError as exc:
            pytest.fail(f"panel {title!r}: {expr} does not parse: {exc}")
        named = set(re.findall(r"\b(oms_[a-z0-9_]+|up)\b(?!\s*\()", expr))
        assert named, f"panel {title!r} names no metric: {expr}"
        assert named <= exported, f"panel {title!r} names metrics nobody exports: {named - exported}"


def test_the_dashboard_is_importable_as_is() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert panel["targets"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
    titles = " ".join(p["title"].lower() for p in panels)
    for subject in ("funnel", "per second", "latency", "lag", "outbox", "dead letters", "stock", "perfect order"):
        assert subject in titles, subject


def test_every_metric_an_alert_rule_names_is_exported(prometheus) -> None:
    named = set(re.findall(r"\boms_[a-z0-9_]+\b", ALERTS.read_text()))
    assert named <= exported_metrics(), named - exported_metrics()
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    assert {r["name"] for r in rules} >= {"OmsServiceDown", "OmsDeadLetters", "OmsNoOrdersDuringBusinessHours"}
    assert {r["name"] for r in rules} >= {
        "OmsPerfectOrderRateDropping",
        "OmsOnTimeDeliveryBelowTarget",
        "OmsHoldsAgeing",
    }
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_a_stopped_service_shows_as_down_and_its_alert_becomes_pending(prometheus, pipeline) -> None:
    fulfillment = pipeline["fulfillment"]
    fulfillment.stop()
    try:
        eventually_sync(lambda: prometheus.value('up{job="oms-fulfillment"}'), lambda up: up == 0)
        assert prometheus.value('up{job="oms-capture"}') == 1
        pending = eventually_sync(
            lambda: prometheus.query('ALERTS{alertname="OmsServiceDown"}'), lambda alerts: len(alerts) > 0
        )
        assert pending[0]["metric"]["job"] == "oms-fulfillment"
        assert pending[0]["metric"]["alertstate"] == "pending"  # fires after a minute down
    finally:
        fulfillment.start()
        fulfillment.wait_ready()
    eventually_sync(lambda: prometheus.value('up{job="oms-fulfillment"}'), lambda up: up == 1)
