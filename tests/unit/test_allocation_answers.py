"""Allocation's operator views answer in the shapes their OpenAPI document declares (services/allocation/answers.py):
the real views over rows of the types asyncpg returns, sent by FastAPI, read back by the declared models (which
forbid keys they do not name). What the views compute in Python (the priority explained, the reorder points) is
covered here; the rows themselves are the migrations' columns."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from services.allocation import repository, views
from services.allocation.answers import OrderPriority, Replenishment, Stock
from services.allocation.orders import Order
from services.allocation.priority import Component, Priority, Ranking
from services.allocation.replenishment import Policy, ReorderRule, ReorderRules
from shared.backbone.auth import operator
from tests.unit.declared_answers import NO_DATABASE, conforms

NOW = datetime.now(UTC)
TODAY = NOW.date()
ORDER_ID = uuid.uuid4()
RULE = ReorderRule("ams", "MUG", 10, 30, 6, "nordic-supply", 5)


def suggestion(status: str) -> dict[str, Any]:
    received = status == "received"
    return {
        "suggestion_id": uuid.uuid4(),
        "warehouse_id": "ams",
        "sku": "MUG",
        "supplier": "nordic-supply",
        "quantity": 24,
        "forecast": 8,
        "on_hand": 12,
        "reserved": 4,
        "on_order": 0,
        "minimum": 10,
        "maximum": 30,
        "pack_multiple": 6,
        "lead_time_days": 5,
        "expected_by": TODAY + timedelta(days=5),
        "status": status,
        "opened_at": NOW - timedelta(days=6),
        "received_at": NOW if received else None,
        "received_by": f"GR-1/{status}" if received else None,
    }


async def suggestion_rows(conn: object, status: str | None, limit: int) -> list[dict[str, Any]]:
    return [suggestion("open")] + ([] if status == "open" else [suggestion("received")])


async def demand_since(conn: object, since: date) -> list[dict[str, Any]]:
    first = TODAY - timedelta(days=3)
    days = [first + timedelta(days=n) for n in range(3)]
    return [{"warehouse_id": "ams", "sku": "MUG", "day": day, "units": 3, "first_day": first} for day in days]


async def stock_rows(conn: object, *_: object) -> list[dict[str, Any]]:
    row = {"warehouse_id": "ams", "sku": "MUG", "on_hand": 12, "reserved": 4, "available": 8, "updated_at": NOW}
    return [row]


async def find_order(conn: object, order_id: uuid.UUID) -> Order:
    components = (Component("service_level", 300, "express"), Component("cutoff", 42, "18 min before the cut-off"))
    return Order(
        order_id=order_id,
        arrived_at=NOW - timedelta(hours=2),
        channel="webshop",
        policy="backorder",
        ship_to={},
        service_level="express",
        lines={"MUG": 2},
        backordered={"MUG": 2},
        status="backordered",
        priority=Priority(components),
    )


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    for replaced in (suggestion_rows, demand_since, stock_rows, find_order):
        monkeypatch.setattr(repository, replaced.__name__, replaced)
    api = FastAPI()
    policy = Policy(ReorderRules([RULE]), demand_window_days=14, service_factor=1.65)
    views.add_views(api, NO_DATABASE, policy, Ranking(100, 10, 100))
    api.dependency_overrides[operator] = lambda: None
    return api


@pytest.mark.parametrize(
    ("path", "route", "model"),
    [
        (f"/v1/orders/{ORDER_ID}/priority", "/v1/orders/{order_id}/priority", OrderPriority),
        ("/v1/stock", "/v1/stock", Stock),
        ("/v1/replenishment?status=all", "/v1/replenishment", Replenishment),
    ],
)
async def test_each_view_answers_in_the_shape_its_document_declares(
    app: FastAPI, path: str, route: str, model: type[BaseModel]
) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oms") as client:
        answer = await client.get(path)

    assert answer.status_code == 200
    # read back strictly from the JSON sent (a number sent as text, or a key missing or undeclared, is refused)
    model.model_validate_json(answer.text, strict=True)
    # and the document's 200 as the API's fuzz test checks it
    conforms(app, route, answer, **({"order_id": str(ORDER_ID)} if "{order_id}" in route else {}))
    body = answer.json()
    if model is Replenishment:  # with a reorder point computed from the demand history
        assert [(p["sku"], p["average_daily_demand"]) for p in body["reorder_points"]] == [("MUG", 2.25)]
    if model is OrderPriority:  # with the age points earned so far
        assert [c["name"] for c in body["components"]] == ["service_level", "cutoff", "age"]
