"""Read-only views for operators (the `oms` command): an order's pick tasks and shipments. No addresses."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import FastAPI

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.runtime import Runtime

from . import repository


def add_views(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/v1/orders/{order_id}/shipments", dependencies=[OPERATORS_ONLY])
    async def shipments_of_order(order_id: UUID) -> dict[str, Any]:
        """Every pick task of the order with its shipment once packed; empty while none was released."""
        async with runtime.pool.acquire() as conn:
            shipments = await repository.order_shipments(conn, order_id)
        return {"order_id": str(order_id), "shipments": shipments}
