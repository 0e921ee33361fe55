"""Allocation's wiring point."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Runtime, serve, service_app

from .handlers import AllocationHandlers
from .settings import AllocationSettings, load_network


def create_app(settings: AllocationSettings) -> FastAPI:
    handlers = AllocationHandlers(load_network(settings.warehouses_file, settings.allocation_file))
    return service_app(Runtime(settings), handlers.routes, prepare=handlers.prepare, title="OMS allocation")


def main() -> None:
    settings = AllocationSettings()
    serve(create_app(settings), settings)
