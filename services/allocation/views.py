"""Read-only views for operators (the `oms` command): stock per warehouse and SKU, replenishment suggestions
with the reorder points demand history suggests, and an order's priority explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import FastAPI, HTTPException, Query
from pydantic import Field

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.http import Listing
from shared.backbone.runtime import Runtime
from shared.contracts.events import Sku, WarehouseId

from . import repository
from .answers import PRIORITY_ANSWERS, REPLENISHMENT_ANSWERS, STOCK_ANSWERS
from .priority import Ranking, explain
from .replenishment import Policy, reorder_points


class StockQuery(Listing):
    sku: Sku | None = None
    warehouse: WarehouseId | None = None
    # Within the stock columns' range (integer): a larger number was a database error, a 500.
    max_available: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class ReplenishmentQuery(Listing):
    status: Literal["open", "received", "all"] = "open"


def add_views(app: FastAPI, runtime: Runtime, replenishment: Policy, ranking: Ranking) -> None:
    @app.get(
        "/v1/orders/{order_id}/priority",
        dependencies=[OPERATORS_ONLY],
        responses=PRIORITY_ANSWERS,
    )
    async def priority(order_id: UUID) -> dict[str, Any]:
        """The order's priority now: each component with its points and why (service level, cut-off, promise,
        customer tier, age earned so far), the score and its band; waiting orders are served by band, then first
        come first served. 404 for an order allocation has not taken."""
        async with runtime.pool.acquire() as conn:
            order = await repository.find_order(conn, order_id)
        if order is None:
            raise HTTPException(404, detail=f"allocation has not taken order {order_id}")
        explained = explain(order.priority, order.arrived_at, datetime.now(UTC), ranking)
        return {"order_id": str(order_id), "status": order.status, "arrived_at": order.arrived_at, **explained}

    @app.get("/v1/stock", dependencies=[OPERATORS_ONLY], responses=STOCK_ANSWERS)
    async def stock(query: Annotated[StockQuery, Query()]) -> dict[str, Any]:
        """On hand, reserved and available to promise, by warehouse and SKU (at most `limit` rows);
        `max_available` keeps the rows with at most that many available (low stock)."""
        async with runtime.pool.acquire() as conn:
            rows = await repository.stock_rows(conn, query.sku, query.warehouse, query.max_available, query.limit)
        return {"stock": rows, "limit": query.limit}

    @app.get("/v1/replenishment", dependencies=[OPERATORS_ONLY], responses=REPLENISHMENT_ANSWERS)
    async def replenishment_view(query: Annotated[ReplenishmentQuery, Query()]) -> dict[str, Any]:
        """Replenishment suggestions (open ones by default), newest first, and per (warehouse, SKU) with a reorder
        rule and demand in the window or an open suggestion: the configured minimum beside the reorder point
        demand history suggests (at most `limit` of each)."""
        today = datetime.now(UTC).date()
        since = today - timedelta(days=replenishment.demand_window_days - 1)
        async with runtime.pool.acquire() as conn:
            status = None if query.status == "all" else query.status
            suggestions = await repository.suggestion_rows(conn, status, query.limit)
            history = await repository.demand_since(conn, since)
            still_open = await repository.suggestion_rows(conn, "open", 1000)
        points = reorder_points(
            replenishment,
            [(r["warehouse_id"], r["sku"], r["day"], r["units"], r["first_day"]) for r in history],
            [(r["warehouse_id"], r["sku"]) for r in still_open],
            today,
        )
        return {
            "suggestions": suggestions,
            "reorder_points": [
                {
                    "warehouse_id": p.rule.warehouse_id,
                    "sku": p.sku,
                    "minimum": p.rule.minimum,
                    "suggested_reorder_point": p.suggested,
                    "average_daily_demand": p.average_daily_demand,
                    "days_of_history": p.days,
                    "lead_time_days": p.rule.lead_time_days,
                    "supplier": p.rule.supplier,
                }
                for p in points[: query.limit]
            ],
            "demand_window_days": replenishment.demand_window_days,
            "service_factor": replenishment.service_factor,
        }
