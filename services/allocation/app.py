"""Allocation's wiring point."""

from __future__ import annotations

from fastapi import FastAPI

from shared.backbone.runtime import Runtime, serve, service_app
from shared.reference.suppliers import load_suppliers

from . import views
from .handlers import AllocationHandlers
from .settings import AllocationSettings, load_network, load_priorities, load_replenishment
from .stock_levels import StockLevels


def create_app(settings: AllocationSettings) -> FastAPI:
    network = load_network(settings.warehouses_file, settings.allocation_file)
    replenishment = load_replenishment(settings.allocation_file, network.warehouse_ids)
    priorities = load_priorities(settings.allocation_file, settings.carriers_file)
    handlers = AllocationHandlers(network, replenishment, priorities, load_suppliers(settings.dropship_file))
    runtime = Runtime(settings)

    async def report_stock_levels() -> None:
        levels = StockLevels(
            runtime.pool, network.warehouses, settings.low_stock_threshold, settings.stock_levels_seconds
        )
        await levels.run()

    app = service_app(
        runtime,
        handlers.routes,
        background={"stock-levels": report_stock_levels},
        title="OMS allocation",
    )
    views.add_views(app, runtime, replenishment, priorities.ranking)
    return app


def main() -> None:
    settings = AllocationSettings()
    serve(create_app(settings), settings)
