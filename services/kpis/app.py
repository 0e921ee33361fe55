"""The KPI service's wiring point: the consumer that keeps each order's facts from the lifecycle events, the report
API, and the loop that works the KPIs out for Prometheus."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI

from shared.backbone.collector import LongLived
from shared.backbone.periodic import refresh_every
from shared.backbone.runtime import Runtime, serve, service_app
from shared.contracts.envelope import now

from . import metrics, repository
from .api import kpis_api
from .handlers import KpiHandlers
from .reports import Reporting
from .settings import KpiSettings
from .window import WindowFigures

log = logging.getLogger(__name__)


def create_app(settings: KpiSettings) -> FastAPI:
    runtime = Runtime(settings)
    rules = settings.rules()
    reporting = Reporting(rules, settings.shipping_rules(), settings.config().cost)
    handlers = KpiHandlers(rules)
    # The window's facts, kept for a day, out of the collector's full scans once read.
    window = WindowFigures(reporting, timedelta(hours=settings.metrics_window_hours), LongLived().settle)

    async def refresh_gauges() -> None:
        async with runtime.pool.acquire() as conn:
            groups = await window.groups(conn, now(), runtime.order_path_watch)
            held = await repository.on_hold(conn)
        metrics.publish(groups, reporting.cost.currency)
        metrics.publish_holds(held, now())

    async def gauges() -> None:
        await refresh_every(
            "KPI gauges", settings.metrics_refresh_seconds, refresh_gauges, runtime.order_path_watch, share=None
        )

    # Every fact is kept by its own key, the first or latest by the events' times (repository.py), so the events
    # are not claimed in an inbox: tests/integration/test_kpi_day.py delivers a day's events again, in reverse.
    app = service_app(
        runtime,
        handlers.routes,
        prepare=handlers.prepare,
        background={"kpi-gauges": gauges},
        idempotent_by_keys=True,
        title="OMS KPIs",
    )
    app.include_router(kpis_api(runtime, reporting))
    return app


def main() -> None:
    settings = KpiSettings()
    serve(create_app(settings), settings)
