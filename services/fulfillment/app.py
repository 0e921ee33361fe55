"""Fulfillment's wiring point."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Runtime, serve, service_app
from shared.settings import CommonSettings

from . import views
from .handlers import FulfillmentHandlers


class FulfillmentSettings(CommonSettings):
    service: str = "fulfillment"


def create_app(settings: FulfillmentSettings) -> FastAPI:
    runtime = Runtime(settings)
    app = service_app(runtime, FulfillmentHandlers().routes, title="OMS fulfillment")
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = FulfillmentSettings()
    serve(create_app(settings), settings)
