"""Read-only views for operators (the `oms` command): an order's pick tasks and shipments, and the purchase orders
still with dropship suppliers. No addresses."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import FastAPI, Query

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.http import Listing
from shared.backbone.runtime import Runtime

from . import dropship_repository, repository
from .answers import PURCHASE_ORDERS_ANSWERS, SHIPMENTS_ANSWERS


def add_views(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/v1/orders/{order_id}/shipments", dependencies=[OPERATORS_ONLY], responses=SHIPMENTS_ANSWERS)
    async def shipments_of_order(order_id: UUID) -> dict[str, Any]:
        """Every pick task of the order with its shipment once packed; empty while none was released."""
        async with runtime.pool.acquire() as conn:
            shipments = await repository.order_shipments(conn, order_id)
        return {"order_id": str(order_id), "shipments": shipments}

    @app.get("/v1/purchase-orders", dependencies=[OPERATORS_ONLY], responses=PURCHASE_ORDERS_ANSWERS)
    async def open_purchase_orders(query: Annotated[Listing, Query()]) -> dict[str, Any]:
        """Purchase orders still with their suppliers (not yet shipped, declined or cancelled), oldest first."""
        async with runtime.pool.acquire() as conn:
            found = await dropship_repository.open_purchase_orders(conn, query.limit)
        return {"purchase_orders": found}
