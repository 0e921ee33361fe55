"""The compose stack (deploy/compose/compose.yaml) from nothing to gone: up, orders through to delivered,
allocation scaled to three instances while orders keep coming, none lost or dead-lettered, down. Prints how long
each stage took (docs/containers.md keeps the measured times)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from deploy.cli import dlq
from deploy.containers.compose import Compose, compose_stack, down, scale, up
from deploy.local.client import PipelineClient, admin_client
from deploy.local.keys import DevelopmentKeys
from deploy.local.settings import LocalStack
from shared.contracts import topics
from tests.factories import order_document
from tests.waiting import eventually

ORDERS_BEFORE, ORDERS_WHILE_SCALED = 10, 30


async def _seed(local: LocalStack, skus: list[str]) -> None:
    client = PipelineClient(local)
    await client.publish_products(skus)
    await client.publish_receipts([("ams", sku, 1000) for sku in skus], reference=f"seed-{uuid.uuid4()}")
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name], timeout=120)
    await client.wait_caught_up(
        "oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name], timeout=120
    )


async def _place(local: LocalStack, skus: list[str], count: int) -> list[str]:
    async with httpx.AsyncClient(
        base_url=local.http_url("capture"), timeout=30, auth=DevelopmentKeys(local.keys_file)
    ) as http:
        ids = []
        for n in range(count):
            response = await http.post("/v1/orders", json=order_document([(skus[n % len(skus)], 1)]))
            assert response.status_code == 202, response.text
            ids.append(response.json()["order_id"])
        return ids


async def _statuses(local: LocalStack, order_ids: list[str]) -> dict[str, int]:
    async with httpx.AsyncClient(
        base_url=local.http_url("capture"), timeout=30, auth=DevelopmentKeys(local.keys_file)
    ) as http:
        counts: dict[str, int] = {}
        for order_id in order_ids:
            status = (await http.get(f"/v1/orders/{order_id}")).json()["status"]
            counts[status] = counts.get(status, 0) + 1
        return counts


async def _all_delivered(local: LocalStack, order_ids: list[str]) -> None:
    await eventually(
        lambda: _statuses(local, order_ids), lambda seen: seen == {"delivered": len(order_ids)}, timeout=240, every=2
    )


async def _customers_mailed_on_delivery(local: LocalStack, order_ids: list[str]) -> int:
    conn = await asyncpg.connect(local.pg_dsn(), password=local.pg_admin_password)
    try:
        count: int = await conn.fetchval(
            "SELECT count(DISTINCT order_id) FROM notifications.deliveries"
            " WHERE order_id = ANY($1::uuid[]) AND kind = 'delivered' AND channel = 'email' AND status = 'sent'",
            order_ids,
        )
        return count
    finally:
        await conn.close()


async def _allocation_members(local: LocalStack) -> int:
    async with admin_client(local.access()) as admin:
        (response,) = await admin.describe_consumer_groups(["oms-allocation"])
    # (error_code, group_id, state, protocol_type, protocol, members, ...)
    ((error, _, state, _, _, members, *_),) = response.groups
    assert (error, state) == (0, "Stable")
    return len(members)


def _scraped_allocation_instances(local: LocalStack) -> int:
    url = f"http://{local.host}:{local.ports.prometheus}/api/v1/query?query=up%7Bjob%3D%22oms-allocation%22%7D%3D%3D1"
    with urllib.request.urlopen(url, timeout=5) as response:
        return len(json.load(response)["data"]["result"])


def _restarts(compose: Compose) -> dict[str, str]:
    names = [name for containers in compose.containers().values() for name in containers]
    found = subprocess.run(
        [compose.engine, "inspect", "--format", "{{.Name}} {{.RestartCount}}", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return {name: count for name, count in (line.split() for line in found if line.strip()) if count != "0"}


def _timed(timings: dict[str, float], stage: str, step: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = step()
    timings[stage] = time.monotonic() - started
    print(f"{stage}: {timings[stage]:.1f} s")
    return result


def test_the_compose_stack_delivers_orders_and_keeps_delivering_with_allocation_scaled_to_three() -> None:
    compose = Compose.detect(compose_stack())
    local = compose.local
    timings: dict[str, float] = {}
    down(compose, purge=True)
    try:
        # given the compose stack brought up from nothing, with stock for the run's SKUs
        timings |= up(compose, {})
        skus = [f"C-{uuid.uuid4().hex[:8]}-{n}" for n in range(5)]
        asyncio.run(_seed(local, skus))

        # when orders are placed, they are delivered
        first = asyncio.run(_place(local, skus, ORDERS_BEFORE))
        _timed(
            timings, f"{ORDERS_BEFORE} orders placed and delivered", lambda: asyncio.run(_all_delivered(local, first))
        )

        # when allocation is scaled to three instances and more orders come
        timings["allocation scaled to 3"] = scale(compose, "allocation", 3)
        second = asyncio.run(_place(local, skus, ORDERS_WHILE_SCALED))

        # then every order is delivered: none lost, none stuck
        _timed(
            timings,
            f"{ORDERS_WHILE_SCALED} more placed and all {ORDERS_BEFORE + ORDERS_WHILE_SCALED} delivered",
            lambda: asyncio.run(_all_delivered(local, first + second)),
        )
        # and three allocation instances share the consumer group (each with its consumer of the order path and
        # its follow-up consumer), each scraped by Prometheus
        assert len(compose.containers()["allocation"]) == 3
        assert asyncio.run(_allocation_members(local)) == 2 * 3
        eventually_scraped = asyncio.run(eventually(lambda: _scraped_allocation_instances(local), lambda n: n == 3))
        assert eventually_scraped == 3
        # and each customer was mailed on delivery through the SMTP sink
        everyone = first + second
        mailed = asyncio.run(
            eventually(lambda: _customers_mailed_on_delivery(local, everyone), lambda n: n == len(everyone))
        )
        assert mailed == len(everyone)
        # and nothing was dead-lettered, no container stopped or restarted
        assert asyncio.run(dlq.listing(local)).letters == []
        assert sorted(compose.container_ids(every=True)) == sorted(compose.container_ids())
        assert _restarts(compose) == {}
    finally:
        timings["down"] = down(compose, purge=True)
        print("\ncompose stack timings:")
        for stage, seconds in timings.items():
            print(f"  {stage:<75} {seconds:6.1f} s")
