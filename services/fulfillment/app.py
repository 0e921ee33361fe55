"""Fulfillment's wiring point: the shipping rules, the warehouses and the clock go into the handlers here."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Runtime, serve, service_app

from .handlers import FulfillmentHandlers
from .settings import FulfillmentSettings


def create_app(settings: FulfillmentSettings) -> FastAPI:
    handlers = FulfillmentHandlers(settings.shipping_rules(), settings.warehouses(), settings.clock())
    return service_app(Runtime(settings), handlers.routes, title="OMS fulfillment")


def main() -> None:
    settings = FulfillmentSettings()
    serve(create_app(settings), settings)
