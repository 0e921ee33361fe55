"""The KPIs of real orders through the real pipeline: the KPI service follows the lifecycle topics over Kafka (orders
validated, rejected and held; allocation; shipments and deliveries; the catalogue's weights), and `oms kpi` and its
gauges show a channel's orders as they went. The exact arithmetic is pinned by tests/integration/test_kpi_day.py
with the events' own times; here the times are the pipeline's."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.test_holds import BLOCKED_ADDRESS
from tests.e2e.test_oms_cli import oms, oms_json
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import channel_key, new_skus, seed, wait_status
from tests.waiting import eventually


def channel_report(channel: str) -> dict[str, Any] | None:
    report = oms_json("kpi", "--by", "channel")
    return next((g for g in report["groups"] if g["group"] == channel), None)


def gauges(channel: str) -> dict[str, float]:
    text = httpx.get(f"{LOCAL.http_url('kpis')}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("oms_kpi_") and f'channel="{channel}"' in line:
            name, value = line.rsplit(" ", 1)
            labels = name.replace(f'channel="{channel}"', "").replace("{,", "{").replace(",}", "}")
            found[labels.removesuffix("{}")] = float(value)
    return found


async def test_a_channels_orders_through_the_pipeline_show_in_oms_kpi_and_its_gauges(http, db) -> None:
    # given stock of one SKU and none of another
    in_stock, out_of_stock = new_skus(2, prefix="KPI")
    await seed([("ams", in_stock, 5), ("ams", out_of_stock, 0)])
    channel = f"kpi-{uuid.uuid4().hex[:6]}"
    key = await channel_key(db, channel)

    # when a channel of its own sends an order it can have, one that must wait, one refused and one held
    async def submit(document: dict[str, Any]) -> dict[str, Any]:
        response = await http.post("/v1/orders", json=document, auth=key)
        assert response.status_code == 202, response.text
        return response.json()  # type: ignore[no-any-return]

    delivered = (await submit(order_document([(in_stock, 2)], channel=channel)))["order_id"]
    waiting = (await submit(order_document([(out_of_stock, 1)], channel=channel)))["order_id"]
    refused = await submit(order_document([("NOT-IN-CATALOGUE", 1)], channel=channel))
    held = await submit(order_document([(in_stock, 1)], channel=channel, shipping_address=BLOCKED_ADDRESS))
    assert (refused["status"], held["status"]) == ("rejected", "on_hold")
    await wait_status(http, delivered, {"delivered"}, timeout=60)
    await wait_status(http, waiting, {"backordered"})

    # then `oms kpi` shows them as they went: two placed and allocated (one in full, one backordered), one refused,
    # one on hold, one delivered in full and priced
    report = await eventually(
        lambda: channel_report(channel),
        lambda r: r is not None and r["orders"]["delivered"] == 1 and r["fill_rate"]["orders"] == 2,
        timeout=60,
    )
    assert report["orders"] == {"placed": 3, "rejected": 1, "delivered": 1, "cancelled": 0, "open": 2}
    assert report["fill_rate"] == {"orders": 2, "line": 0.5, "unit": 0.6667, "order": 0.5}  # 2 of 3 units reserved
    assert report["backorder_rate"] == {"lines": 2, "backordered": 1, "rate": 0.5}
    assert report["perfect_order"]["components"]["in_full"] == 1.0
    assert report["holds"]["held"] == report["holds"]["on_hold"] == 1
    assert report["cycle_time"]["internal"]["orders"] == report["cycle_time"]["total"]["orders"] == 1
    assert 0 < report["cycle_time"]["internal"]["p50_seconds"] <= report["cycle_time"]["total"]["p50_seconds"]
    assert report["cost_per_order"]["orders"] == 1 and report["cost_per_order"]["unpriced"] == 0
    shown_to_people = oms("kpi", "--by", "channel").stdout
    assert f"{channel}:\n  orders: 3 placed: 1 delivered, 0 cancelled, 2 open; 1 refused\n" in shown_to_people
    assert "fill rate (first time): 50.0% of lines, 66.7% of units, 50.0% of orders" in shown_to_people

    # and the gauges carry the same figures, labelled by channel only, once refreshed after both orders were
    # allocated (a refresh between the two showed the first alone: a fill rate of 1.0)
    fill_rate = 'oms_kpi_fill_rate_ratio{level="order"}'
    shown = await eventually(
        lambda: gauges(channel), lambda g: g.get(fill_rate) == report["fill_rate"]["order"], timeout=75
    )
    assert shown[fill_rate] == 0.5
    assert shown["oms_kpi_backorder_ratio"] == 0.5
    assert shown["oms_kpi_orders_on_hold"] == 1
    assert shown["oms_kpi_oldest_hold_age_seconds"] > 0
