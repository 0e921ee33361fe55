"""The quick-start demo: the whole pipeline on this machine, 200 orders through it, and what it measured.

Starts what is not running (stack, services, simulator), seeds a catalogue and stock, submits the orders
over HTTP, shows progress from capture's metrics while they flow, prints a summary and stops what it
started. Exits 0 only if every order reached a final state (delivered or rejected).

The progress and the summary's headline numbers come from the services' Prometheus metrics (the change
between a scrape before and after the run): the funnel counters, the messages sent, and the latency
percentiles estimated from the intake latency histograms. Per-order timelines and the mailbox are read
too, as a cross-check of those numbers.
Run: python -m deploy.local.demo [--orders 200] [--concurrency 20] [--timeout 300]
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import platform
import random
import sys
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from deploy.local import processes, scrape, stack
from deploy.local.client import PipelineClient
from deploy.local.keys import DevelopmentKeys
from deploy.local.settings import LocalStack
from services.capture.metrics import (
    DELIVERED_BUCKETS,
    INTAKE_TO_DELIVERED_NAME,
    INTAKE_TO_PICK_TASK_NAME,
    PICK_TASK_BUCKETS,
)
from shared.contracts import topics
from shared.contracts.topics import SERVICES

FINAL = ("delivered", "rejected")
STATUS_CHANGES = "oms_order_status_changes_total"
MESSAGE_FOR_STATUS = {"confirmed": "validated", "rejected": "rejected", "shipped": "shipped", "delivered": "delivered"}
COUNTRIES = ("NL", "DE", "FR", "BE", "GB")
SHIPPING = Decimal("4.95")
SERVICE_LEVELS = ("standard", "standard", "express", "overnight")


def demo_order(run: str, number: int, skus: list[str]) -> dict[str, Any]:
    rng = random.Random(number)
    chosen = rng.sample(skus, rng.randint(1, 3))
    lines = [(sku, rng.randint(1, 3), Decimal(f"{rng.randint(5, 80)}.{rng.randint(0, 99):02d}")) for sku in chosen]
    if number % 20 == 7:  # every 20th order asks for something not in the catalogue and is rejected
        lines.append((f"UNKNOWN-{run}", 1, Decimal("1.00")))
    total = sum((price * quantity for _, quantity, price in lines), SHIPPING)
    country = COUNTRIES[number % len(COUNTRIES)]
    return {
        "channel": "webshop",
        "external_id": f"demo-{run}-{number}",
        "placed_at": datetime.now().astimezone().isoformat(),
        "currency": "EUR",
        # Customers and addresses of this run: a demo run again the same day is not a burst to the risk rules.
        "customer": {"email": f"customer{number}-{run}@example.test", "name": f"Customer {number}"},
        "shipping_address": {
            "name": f"Customer {number}",
            "line1": f"Street {number}",
            "line2": f"Run {run}",
            "city": "City",
            "postal_code": f"{1000 + number}",
            "country": country,
        },
        "service_level": SERVICE_LEVELS[number % len(SERVICE_LEVELS)],
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": str(price)} for sku, quantity, price in lines],
        "shipping_price": str(SHIPPING),
        "payment": {"status": "paid", "amount": str(total)},
    }


async def status_counts(http: httpx.AsyncClient) -> dict[str, float]:
    """Orders that reached each status so far, from capture's metrics."""
    return scrape.by_label(scrape.parse((await http.get("/metrics")).text), STATUS_CHANGES, "status")


async def scrape_all(local: LocalStack) -> scrape.Samples:
    """Every service's metrics in one map."""
    async with httpx.AsyncClient(timeout=10) as http:
        pages = await asyncio.gather(*(http.get(f"{local.http_url(s)}/metrics") for s in SERVICES))
    return scrape.merge(*(scrape.parse(page.text) for page in pages))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cross_check_line(values: list[float]) -> str:
    if not values:
        return "    per-order timelines: no samples"
    return (
        f"    per-order timelines ({len(values)}): p50 {percentile(values, 50) * 1000:.0f} ms, "
        f"p95 {percentile(values, 95) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms"
    )


def histogram_line(name: str, samples: scrape.Samples, histogram: str) -> str:
    cumulative = scrape.buckets(samples, histogram)
    parts = []
    for q in (0.5, 0.95, 0.99):
        estimate = scrape.quantile(q, cumulative)
        if estimate is not None:
            parts.append(
                f"p{round(q * 100)} {estimate.value * 1000:.0f} ms"
                f" (in {estimate.lower * 1000:.0f}-{estimate.upper * 1000:.0f} ms)"
            )
    shown = ", ".join(parts) or "no samples"
    return f"  {name}, from {histogram} ({scrape.count_of(cumulative)} observed): {shown}"


def bucket_note() -> str:
    def bounds(buckets: tuple[float, ...]) -> str:
        return ", ".join(f"{b:g}" for b in buckets if b <= 10)

    return (
        "  (percentiles interpolated inside histogram buckets, as histogram_quantile does; the true value lies in"
        f" the bucket shown. Bucket bounds up to 10 s: pick task {bounds(PICK_TASK_BUCKETS)} s;"
        f" delivered {bounds(DELIVERED_BUCKETS)} s)"
    )


def step_time(view: dict[str, Any], status: str) -> datetime | None:
    for step in view["timeline"]:
        if step["status"] == status:
            return datetime.fromisoformat(step["occurred_at"])
    return None


async def run_demo(local: LocalStack, orders: int, concurrency: int, timeout: float) -> bool:
    run = uuid.uuid4().hex[:6]
    skus = [f"DEMO-{run}-{i:02d}" for i in range(20)]
    client = PipelineClient(local)
    print(f"seeding 20 products and stock in 3 warehouses (run {run})")
    await client.publish_products(skus)
    await client.publish_receipts([(wh, sku, 1000) for wh in ("ams", "fra", "lyo") for sku in skus], reference=run)
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    await client.wait_caught_up("oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name])

    auth = DevelopmentKeys(local.keys_file)
    async with httpx.AsyncClient(base_url=client.capture_url, timeout=30, auth=auth) as http:
        metrics_before = await scrape_all(local)
        baseline = await status_counts(http)
        gate = asyncio.Semaphore(concurrency)

        async def submit(number: int) -> str:
            async with gate:
                response = await http.post("/v1/orders", json=demo_order(run, number, skus))
                response.raise_for_status()
                return str(response.json()["order_id"])

        print(f"submitting {orders} orders over HTTP, {concurrency} at a time")
        started = time.monotonic()
        order_ids = await asyncio.gather(*(submit(n) for n in range(orders)))
        submitted = time.monotonic() - started
        print(f"submitted in {submitted:.1f} s ({orders / submitted:.0f} orders/s accepted)")

        finished = 0.0
        while True:
            now = await status_counts(http)
            delta = {s: int(now.get(s, 0) - baseline.get(s, 0)) for s in now}
            done = sum(delta.get(s, 0) for s in FINAL)
            shown = ", ".join(
                f"{s} {delta.get(s, 0)}"
                for s in ("validated", "allocated", "backordered", "shipped", "delivered", "rejected")
            )
            print(f"  {time.monotonic() - started:5.1f} s  {shown}", flush=True)
            if done >= orders:
                finished = time.monotonic() - started
                break
            if time.monotonic() - started > timeout:
                break
            await asyncio.sleep(1.0)

        views = await asyncio.gather(*(http.get(f"/v1/orders/{oid}") for oid in order_ids))
    # The last messages may still be on their way to the mail server: wait, up to a limit, until the metrics
    # count one message per order and step (confirmed per validated order, and so on).
    deadline = time.monotonic() + 30
    while True:
        measured = scrape.delta(await scrape_all(local), metrics_before)
        reached = scrape.by_label(measured, STATUS_CHANGES, "status")
        sent = scrape.by_label(measured, "oms_notifications_sent_total", "kind")
        if all(sent.get(kind, 0) >= reached.get(status, 0) for kind, status in MESSAGE_FOR_STATUS.items()):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    views_json = [v.json() for v in views]
    return summarise(local, views_json, order_ids, finished, submitted, measured)


def summarise(
    local: LocalStack,
    views: list[dict[str, Any]],
    order_ids: list[str],
    finished: float,
    submitted: float,
    measured: scrape.Samples,
) -> bool:
    by_status: dict[str, int] = {}
    for view in views:
        by_status[view["status"]] = by_status.get(view["status"], 0) + 1
    to_pick, to_delivered = [], []
    for view in views:
        received = step_time(view, "received")
        released, delivered = step_time(view, "released"), step_time(view, "delivered")
        if received and released:
            to_pick.append((released - received).total_seconds())
        if received and delivered:
            to_delivered.append((delivered - received).total_seconds())
    wanted = set(order_ids)
    box = mailbox.Maildir(local.maildir, create=False)
    mails = [m["X-OMS-Message-Kind"] for m in box if m["X-OMS-Order-Id"] in wanted]
    all_final = sum(by_status.get(s, 0) for s in FINAL) == len(order_ids)
    reached = scrape.by_label(measured, STATUS_CHANGES, "status")
    sent = scrape.by_label(measured, "oms_notifications_sent_total", "kind")
    counters = {
        name: scrape.total(measured, f"oms_{name}_total")
        for name in ("orders_received", "orders_allocated", "orders_split", "shipments_shipped", "orders_delivered")
    }
    print("\nsummary (from the services' metrics: change during this run)")
    print(
        f"  machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" everything (Kafka, PostgreSQL, 4 services, simulator, this client) on this machine"
    )
    print(
        "  funnel (orders reaching each status, capture): "
        + ", ".join(
            f"{s} {int(reached.get(s, 0))}"
            for s in (
                "validated",
                "rejected",
                "allocated",
                "backordered",
                "partially_shipped",
                "shipped",
                "delivered",
                "cancelled",
            )
        )
    )
    print("  counted where decided: " + ", ".join(f"{name.replace('_', ' ')} {int(n)}" for name, n in counters.items()))
    print(
        f"    cross-check, final status of the {len(order_ids)} orders: "
        + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))
    )
    if finished:
        print(
            f"  throughput: {len(order_ids) / finished:.1f} orders/s from first submission to last final state"
            f" ({finished:.1f} s); intake alone {len(order_ids) / submitted:.0f} orders/s"
        )
    print(histogram_line("intake to pick task", measured, INTAKE_TO_PICK_TASK_NAME))
    print(cross_check_line(to_pick))
    print(
        histogram_line(
            "intake to delivered (simulated warehouse and carrier steps included)", measured, INTAKE_TO_DELIVERED_NAME
        )
    )
    print(cross_check_line(to_delivered))
    print(bucket_note())
    print(
        f"  messages sent: {int(sum(sent.values()))} ({', '.join(f'{k} {int(n)}' for k, n in sorted(sent.items()))});"
        f" cross-check, mails in the SMTP server's mailbox: {len(mails)}"
    )
    print(
        "  result: " + ("every order reached a final state" if all_final else "NOT every order reached a final state")
    )
    return all_final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every order to finish")
    args = parser.parse_args()

    local = LocalStack.from_env()
    started_stack = not stack.running(local)
    if started_stack:
        asyncio.run(stack.up(local))
    pipeline = processes.everything(local)
    started = [p for p in pipeline if p.pid() is None]
    ok = False
    try:
        processes.start_all(pipeline)
        ok = asyncio.run(run_demo(local, args.orders, args.concurrency, args.timeout))
    finally:
        for process in reversed(started):
            process.stop()
        if started_stack:
            stack.down(local)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
