"""Returns' wiring point: the return API, the consumer of the order facts, requests, receipts and the payment
provider's answers, the sweep that closes RMAs whose parcel never came, and the one that asks refunds and charges
again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import FastAPI

from shared.backbone import aftercommit
from shared.backbone.db import Conn
from shared.backbone.http import BodySizeLimit
from shared.backbone.periodic import refresh_every
from shared.backbone.runtime import Runtime, serve, service_app

from . import metrics, repository
from .api import returns_api
from .handlers import ReturnsHandlers
from .settings import ReturnsSettings

log = logging.getLogger(__name__)


def create_app(settings: ReturnsSettings) -> FastAPI:
    runtime = Runtime(settings)
    clock = settings.clock()
    handlers = ReturnsHandlers(
        settings.policy(), settings.shipping_rules(), settings.warehouses(), clock, settings.payment_retries()
    )

    def sweep(
        what: str, every: float, step: Callable[[Conn, datetime], Awaitable[int]]
    ) -> Callable[[], Awaitable[None]]:
        async def loop() -> None:
            # Every instance sweeps; each row is taken by one of them (locked, the others skip it).
            while True:
                await asyncio.sleep(every)
                try:
                    async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
                        await step(conn, clock())
                except Exception as exc:  # the database may be away for a while: the next sweep catches up
                    log.warning("%s not swept (%s)", what, exc.__class__.__name__)

        return loop

    async def refresh_return_rate() -> None:
        async with runtime.pool.acquire() as conn:
            for rate in await repository.return_rates(conn, "channel"):
                metrics.RETURN_RATE.labels(rate["channel"]).set(rate["rate"])

    async def report_return_rate() -> None:
        await refresh_every("return rate", settings.return_rate_seconds, refresh_return_rate, runtime.order_path_watch)

    background = {
        "return-rate": report_return_rate,
        "rma-expiry": sweep("expired RMAs", settings.rma_expiry_sweep_seconds, handlers.expire),
        "payment-retries": sweep("refunds and charges due", settings.refund_sweep_seconds, handlers.retry_payments),
    }
    app = service_app(runtime, handlers.routes, background=background, title="OMS returns")
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.include_router(returns_api(runtime, handlers))
    return app


def main() -> None:
    settings = ReturnsSettings()
    serve(create_app(settings), settings)
