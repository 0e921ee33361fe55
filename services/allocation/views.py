"""Read-only views for operators (the `oms` command): stock per warehouse and SKU."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.runtime import Runtime
from shared.contracts.events import Sku, WarehouseId

from . import repository


def add_views(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/v1/stock", dependencies=[OPERATORS_ONLY])
    async def stock(
        sku: Annotated[Sku | None, Query()] = None,
        warehouse: Annotated[WarehouseId | None, Query()] = None,
        max_available: Annotated[int | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """On hand, reserved and available to promise, by warehouse and SKU (at most `limit` rows);
        `max_available` keeps the rows with at most that many available (low stock)."""
        async with runtime.pool.acquire() as conn:
            rows = await repository.stock_rows(conn, sku, warehouse, max_available, limit)
        return {"stock": rows, "limit": limit}
