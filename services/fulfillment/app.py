"""Fulfillment's wiring point."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Runtime, serve, service_app
from shared.settings import CommonSettings

from .handlers import FulfillmentHandlers


class FulfillmentSettings(CommonSettings):
    service: str = "fulfillment"


def create_app(settings: FulfillmentSettings) -> FastAPI:
    return service_app(Runtime(settings), FulfillmentHandlers().routes, title="OMS fulfillment")


def main() -> None:
    settings = FulfillmentSettings()
    serve(create_app(settings), settings)
