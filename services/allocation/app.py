"""Allocation's wiring point."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Runtime, serve, service_app
from shared.warehouses import load_warehouses

from .handlers import AllocationHandlers
from .settings import AllocationSettings


def create_app(settings: AllocationSettings) -> FastAPI:
    handlers = AllocationHandlers(load_warehouses(settings.warehouses_file))
    return service_app(Runtime(settings), handlers.routes, title="OMS allocation")


def main() -> None:
    settings = AllocationSettings()
    serve(create_app(settings), settings)
