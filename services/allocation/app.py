"""Allocation's wiring point."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Runtime, serve, service_app
from shared.warehouses import load_warehouses

from . import views
from .handlers import AllocationHandlers
from .settings import AllocationSettings
from .stock_levels import StockLevels


def create_app(settings: AllocationSettings) -> FastAPI:
    warehouses = load_warehouses(settings.warehouses_file)
    handlers = AllocationHandlers(warehouses)
    runtime = Runtime(settings)

    async def report_stock_levels() -> None:
        levels = StockLevels(runtime.pool, warehouses, settings.low_stock_threshold, settings.stock_levels_seconds)
        await levels.run()

    app = service_app(
        runtime, handlers.routes, background={"stock-levels": report_stock_levels}, title="OMS allocation"
    )
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = AllocationSettings()
    serve(create_app(settings), settings)
