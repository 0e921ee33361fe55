"""Fulfillment's wiring point: the shipping rules, the warehouses and the clock go into the handlers here."""

from __future__ import annotations

from fastapi import FastAPI

from shared.backbone.runtime import Runtime, serve, service_app

from . import views
from .dropship_handlers import sweep_timeouts
from .handlers import FulfillmentHandlers
from .settings import FulfillmentSettings


def create_app(settings: FulfillmentSettings) -> FastAPI:
    runtime = Runtime(settings)
    handlers = FulfillmentHandlers(
        settings.shipping_rules(), settings.warehouses(), settings.clock(), settings.suppliers()
    )

    async def time_out_purchase_orders() -> None:
        await sweep_timeouts(runtime.pool, handlers.dropship, settings.dropship_timeout_check_seconds)

    app = service_app(
        runtime,
        handlers.routes,
        prepare=handlers.prepare,
        background={"dropship-timeouts": time_out_purchase_orders},
        title="OMS fulfillment",
    )
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = FulfillmentSettings()
    serve(create_app(settings), settings)
