"""Open-loop load: orders sent at their due times whatever the pipeline does with the ones before, so a stall
shows as latency instead of slowing the sender down (no coordinated omission).

Kafka: a producer (librdkafka's) publishes each order on oms.orders.submitted at its due time, as the channel adapters'
principal; when the producer itself falls behind, that lateness is part of the measured latency, because
latency runs from the due time. HTTP: vegeta (Go, open loop: it adds workers rather than wait for answers)
posts one order per request at a constant rate with the channel's API key, or delivers it as Shopify's signed
orders/create webhook; each result carries its sequence number, so its due time is the attack's start + sequence /
rate.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deploy.local import shopify
from deploy.local.settings import LocalStack
from shared.backbone import kafka_access
from shared.contracts import topics

# How long the broker may take to answer the load generator's producer (connecting, acknowledging the last orders).
DELIVERY_SECONDS = 60.0
# librdkafka's idempotent producer sends nothing until the broker has given it a producer id, and one that asked
# before its connection was up asks again only half a second later: a step's first orders (about 100 at 200/s)
# then waited for it in 5 of 19 quick runs, due in its first 0.3 s and taken by capture together 0.6 s after the
# first was due (docs/benchmarks/findings.md, round 37). Its statistics say when it has one ("eos": "idemp_state").
PRODUCER_ID_ASSIGNED = "Assigned"
STATISTICS_EVERY_MS = 100
VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"


@dataclass(frozen=True)
class Sent:
    """When the sending began (epoch s) and how far behind its schedule the sender fell at worst (s)."""

    started: float
    late_max: float


async def publish_open_loop(local: LocalStack, bodies: list[tuple[str, bytes]], offsets: list[float]) -> Sent:
    """Publish (key, body) pairs on the intake topic, each at started + its offset.

    With librdkafka (the confluent-kafka client, a bench extra), which does a request's work in C on its own
    threads: at 200 orders/s aiokafka's producer kept a tenth of a core busy, librdkafka half that, CPU the pipeline
    under test shares (docs/benchmarks/findings.md, round 23). Still one order at a time as a channel adapter sends
    them, idempotent, acks=all."""
    kafka: Any = importlib.import_module("confluent_kafka")
    access = local.access(kafka_access.principal(topics.ORDERS_SUBMITTED.writer))
    config = {**access.librdkafka_config(), "enable.idempotence": True, "linger.ms": 5}
    # Ready to send before the first order is due, so that no order waits for the connection or the producer id.
    producer = await asyncio.to_thread(ready_producer, kafka, config, DELIVERY_SECONDS)
    failures: list[str] = []

    def delivered(error: Any, _record: Any) -> None:
        if error is not None:
            failures.append(str(error))

    late_max = 0.0
    started_wall, started = time.time(), time.monotonic()
    for (key, body), offset in zip(bodies, offsets, strict=True):
        wait = started + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        producer.produce(topics.ORDERS_SUBMITTED.name, body, key=key.encode(), on_delivery=delivered)
        producer.poll(0)  # runs the callbacks of the deliveries acknowledged meanwhile
        late_max = max(late_max, time.monotonic() - started - offset)
    undelivered = await asyncio.to_thread(producer.flush, DELIVERY_SECONDS)
    if undelivered or failures:
        raise RuntimeError(f"{undelivered} orders not acknowledged, {len(failures)} refused: {failures[:3]}")
    return Sent(started_wall, late_max)


def ready_producer(kafka: Any, config: dict[str, Any], timeout: float) -> Any:
    """An idempotent librdkafka producer (`kafka`: the confluent_kafka module) that has its producer id, or
    RuntimeError after `timeout` seconds."""
    states: list[str] = []

    def statistics(document: str) -> None:
        if states[-1:] != [PRODUCER_ID_ASSIGNED]:  # once it has its id, nothing is parsed again
            states.append(json.loads(document).get("eos", {}).get("idemp_state", ""))

    deadline = time.monotonic() + timeout  # one bound for connecting and for the id, as the docstring says
    producer = kafka.Producer({**config, "statistics.interval.ms": STATISTICS_EVERY_MS, "stats_cb": statistics})
    producer.list_topics(topics.ORDERS_SUBMITTED.name, timeout)  # connected, and the topic's partitions known
    while states[-1:] != [PRODUCER_ID_ASSIGNED]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the load generator's producer got no producer id in {timeout:g} s: {states[-1:]}")
        producer.poll(STATISTICS_EVERY_MS / 1000)  # the statistics are handed over here
    return producer


def vegeta_binary(local: LocalStack) -> str:
    """vegeta from OMS_VEGETA or PATH, else built once with `go install` into the cache beside Kafka's jars."""
    named = os.environ.get("OMS_VEGETA") or shutil.which("vegeta")
    if named:
        return named
    target = local.cache / f"vegeta-{VEGETA_VERSION}"
    binary = target / "vegeta"
    if binary.exists():
        return str(binary)
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            f"the HTTP load needs vegeta: install Go 1.22 or later (to build {VEGETA_MODULE}@{VEGETA_VERSION}), "
            "or put vegeta on PATH or in OMS_VEGETA"
        )
    print(f"building vegeta {VEGETA_VERSION} with go install into {target}", flush=True)
    env = {**os.environ, "GOBIN": str(target)}
    result = subprocess.run(
        [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"go install {VEGETA_MODULE}@{VEGETA_VERSION} failed:\n{result.stderr[-3000:]}")
    return str(binary)


def vegeta_targets(capture_url: str, documents: list[dict[str, Any]], token: str) -> str:
    """One JSON target per line, each with its own order as the body (vegeta's `-format=json`)."""
    header = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return _targets(f"{capture_url}/v1/orders", ((json.dumps(d).encode(), header) for d in documents))


def shopify_targets(capture_url: str, documents: list[dict[str, Any]], first_id: int) -> str:
    """The same orders as deliveries of Shopify's orders/create webhook from the development shop: each its own
    Shopify order id (from `first_id` on) and webhook id, signed as Shopify signs them."""
    deliveries = []
    for number, document in enumerate(documents):
        raw = json.dumps(shopify.orders_create(document, first_id + number)).encode()
        deliveries.append((raw, shopify.signed_headers(raw, str(uuid.uuid4()))))
    return _targets(f"{capture_url}{shopify.WEBHOOK_PATH}", deliveries)


def _targets(url: str, requests: Iterable[tuple[bytes, dict[str, str]]]) -> str:
    lines = []
    for body, headers in requests:
        header = {name: [value] for name, value in headers.items()}
        target = {"method": "POST", "url": url, "body": base64.b64encode(body).decode(), "header": header}
        lines.append(json.dumps(target))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Response:
    due: float  # epoch s
    sent: float  # epoch s
    latency: float  # s
    status: str  # HTTP status, or "error" when there was no response
    order_id: str | None


async def attack(vegeta: str, targets: Path, rate: float, seconds: float, results: Path) -> list[Response]:
    """Post the targets at `rate` per second for `seconds`; one Response per request made."""
    argv = [vegeta, "attack", "-format=json", "-lazy", f"-targets={targets}", f"-rate={rate:g}/1s"]
    argv += [f"-duration={seconds:g}s", "-timeout=60s", "-max-body=-1", f"-output={results}"]
    proc = await asyncio.create_subprocess_exec(*argv, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"vegeta attack failed: {err.decode(errors='replace')[-2000:]}")
    proc = await asyncio.create_subprocess_exec(
        vegeta, "encode", "--to", "json", str(results), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return responses([json.loads(line) for line in out.splitlines() if line.strip()], rate)


def responses(results: list[dict[str, Any]], rate: float) -> list[Response]:
    """vegeta's results with each request's due time: the first request's send time + its sequence / rate."""
    if not results:
        return []
    start = _epoch(min(results, key=lambda r: int(r["seq"]))["timestamp"])
    found = []
    for r in results:
        order_id = None
        if r["code"] == 202:
            order_id = json.loads(base64.b64decode(r["body"]))["order_id"]
        status = str(r["code"]) if r["code"] else f"error ({transport_error(r['error'])})"
        found.append(Response(start + r["seq"] / rate, _epoch(r["timestamp"]), r["latency"] / 1e9, status, order_id))
    return found


def transport_error(error: str) -> str:
    """What went wrong with a request that got no answer, without the URL vegeta puts first: `Post "http://…":
    EOF` is "EOF", `… read: connection reset by peer` is "connection reset by peer"."""
    return error.rsplit(": ", 1)[-1] or "no answer"


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()  # nanoseconds are cut to microseconds
