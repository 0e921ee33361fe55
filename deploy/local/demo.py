"""The quick-start demo: the whole pipeline on this machine, 200 orders through it, and what it measured.

Starts what is not running (stack, services, simulator), seeds a catalogue and stock, submits the orders
over HTTP, shows progress from capture's metrics while they flow, prints a summary and stops what it
started. Exits 0 only if every order reached a final state (delivered or rejected).
Run: python -m deploy.local.demo [--orders 200] [--concurrency 20] [--timeout 300]
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import platform
import random
import re
import sys
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from deploy.local import client, processes, stack
from shared import topics

FINAL = ("delivered", "rejected")
STATUS_METRIC = re.compile(r'^oms_order_status_changes_total\{status="(\w+)"\} ([0-9.e+]+)$', re.MULTILINE)
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
        "customer": {"email": f"customer{number}@example.test", "name": f"Customer {number}"},
        "shipping_address": {
            "name": f"Customer {number}",
            "line1": f"Street {number}",
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
    text = (await http.get("/metrics")).text
    return {status: float(value) for status, value in STATUS_METRIC.findall(text)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency_line(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name}: no samples"
    return (
        f"  {name} ({len(values)} orders): p50 {percentile(values, 50) * 1000:.0f} ms, "
        f"p95 {percentile(values, 95) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms"
    )


def step_time(view: dict[str, Any], status: str) -> datetime | None:
    for step in view["timeline"]:
        if step["status"] == status:
            return datetime.fromisoformat(step["occurred_at"])
    return None


async def run_demo(orders: int, concurrency: int, timeout: float) -> bool:
    run = uuid.uuid4().hex[:6]
    skus = [f"DEMO-{run}-{i:02d}" for i in range(20)]
    print(f"seeding 20 products and stock in 3 warehouses (run {run})")
    await client.publish_products(skus)
    await client.publish_receipts([(wh, sku, 1000) for wh in ("ams", "fra", "lyo") for sku in skus], reference=run)
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    await client.wait_caught_up("oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name])

    async with httpx.AsyncClient(base_url=client.CAPTURE_URL, timeout=30) as http:
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
    views_json = [v.json() for v in views]
    return summarise(views_json, order_ids, finished, submitted)


def summarise(views: list[dict[str, Any]], order_ids: list[str], finished: float, submitted: float) -> bool:
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
    box = mailbox.Maildir(processes.state_dir() / "mail", create=False)
    mails = [m["X-OMS-Message-Kind"] for m in box if m["X-OMS-Order-Id"] in wanted]
    all_final = sum(by_status.get(s, 0) for s in FINAL) == len(order_ids)
    print("\nsummary")
    print(
        f"  machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" everything (Kafka, PostgreSQL, 4 services, simulator, this client) on this machine"
    )
    print(f"  orders: {len(order_ids)}; final status: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    if finished:
        print(
            f"  throughput: {len(order_ids) / finished:.1f} orders/s from first submission to last final state"
            f" ({finished:.1f} s); intake alone {len(order_ids) / submitted:.0f} orders/s"
        )
    print(latency_line("intake to pick task", to_pick))
    print(latency_line("intake to delivered (simulated warehouse and carrier steps included)", to_delivered))
    print(
        f"  emails received by the SMTP server: {len(mails)} "
        f"({', '.join(f'{k} {mails.count(k)}' for k in sorted(set(mails)))})"
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

    started_stack = not stack.running()
    if started_stack:
        asyncio.run(stack.up())
    pipeline = processes.everything()
    started = [p for p in pipeline if p.pid() is None]
    ok = False
    try:
        processes.start_all(pipeline)
        ok = asyncio.run(run_demo(args.orders, args.concurrency, args.timeout))
    finally:
        for process in reversed(started):
            process.stop()
        if started_stack:
            stack.down()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
