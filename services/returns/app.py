"""Returns' wiring point: the return API, the consumer of the order facts, requests and receipts, and the sweep
that closes RMAs whose parcel never came."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from shared.backbone import aftercommit
from shared.backbone.http import BodySizeLimit
from shared.backbone.runtime import Runtime, serve, service_app

from .api import returns_api
from .handlers import ReturnsHandlers
from .settings import ReturnsSettings

log = logging.getLogger(__name__)


def create_app(settings: ReturnsSettings) -> FastAPI:
    runtime = Runtime(settings)
    clock = settings.clock()
    handlers = ReturnsHandlers(settings.policy(), settings.shipping_rules(), settings.warehouses(), clock)

    async def close_expired_rmas() -> None:
        # Every instance sweeps; an RMA is closed by one of them (its row is locked, others skip it).
        while True:
            await asyncio.sleep(settings.rma_expiry_sweep_seconds)
            try:
                async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
                    await handlers.expire(conn, clock())
            except Exception as exc:  # the database may be away for a while: the next sweep catches up
                log.warning("expired RMAs not swept (%s)", exc.__class__.__name__)

    app = service_app(runtime, handlers.routes, background={"rma-expiry": close_expired_rmas}, title="OMS returns")
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.include_router(returns_api(runtime, handlers))
    return app


def main() -> None:
    settings = ReturnsSettings()
    serve(create_app(settings), settings)
