"""Capture's wiring point: the order intake API and the consumers of intake and lifecycle topics."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from shared import aftercommit
from shared.events import SubmittedOrder
from shared.http import BodySizeLimit
from shared.runtime import Runtime, serve, service_app

from . import repository
from .handlers import CaptureHandlers
from .settings import CaptureSettings


def create_app(settings: CaptureSettings) -> FastAPI:
    runtime = Runtime(settings)
    handlers = CaptureHandlers(settings.intake_rules)
    app = service_app(runtime, handlers.routes, title="OMS capture")
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)

    @app.post("/v1/orders", status_code=202)
    async def submit_order(order: Annotated[SubmittedOrder, Body()]) -> JSONResponse:
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            accepted = await handlers.intake(conn, order, cause=None)
        return JSONResponse(
            {"order_id": str(accepted.order_id), "status": accepted.status, "duplicate": accepted.duplicate},
            status_code=202,
        )

    @app.get("/v1/orders/{order_id}")
    async def get_order(order_id: UUID) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            view = await repository.order_view(conn, order_id)
        if view is None:
            raise HTTPException(404, "no such order")
        return view

    return app


def main() -> None:
    settings = CaptureSettings()
    serve(create_app(settings), settings)
