"""Capture's wiring point: the order API (generic, Shopify, cancel requests) and the consumers of the intake,
cancel request and lifecycle topics."""

from __future__ import annotations

from fastapi import FastAPI

from shared.http import BodySizeLimit
from shared.runtime import Runtime, serve, service_app

from .api import order_api
from .handlers import CaptureHandlers
from .settings import CaptureSettings


def create_app(settings: CaptureSettings) -> FastAPI:
    runtime = Runtime(settings)
    handlers = CaptureHandlers(settings.intake_rules)
    app = service_app(runtime, handlers.routes, title="OMS capture")
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.include_router(order_api(runtime, handlers, settings))
    return app


def main() -> None:
    settings = CaptureSettings()
    serve(create_app(settings), settings)
