"""Fulfillment's wiring point: the shipping rules, the warehouses and the clock go into the handlers here."""

from __future__ import annotations

from fastapi import FastAPI

from shared.backbone.runtime import Runtime, serve, service_app

from . import views
from .handlers import FulfillmentHandlers
from .settings import FulfillmentSettings


def create_app(settings: FulfillmentSettings) -> FastAPI:
    runtime = Runtime(settings)
    handlers = FulfillmentHandlers(settings.shipping_rules(), settings.warehouses(), settings.clock())
    app = service_app(runtime, handlers.routes, prepare=handlers.prepare, title="OMS fulfillment")
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = FulfillmentSettings()
    serve(create_app(settings), settings)
