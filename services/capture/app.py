"""Capture's wiring point: the order API (generic, Shopify, cancel requests, holds), the consumers of the intake,
cancel request and lifecycle topics, the expiry of cancel requests no order has claimed, and of holds past their
time limit, the order path's backlog, measured and reported to every service's watch. The risk rules are read
here, once."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from shared.backbone import aftercommit
from shared.backbone.http import BodySizeLimit
from shared.backbone.runtime import Runtime, serve, service_app
from shared.contracts.envelope import now

from . import repository
from .api import INTAKES, order_api
from .handlers import CaptureHandlers
from .settings import CaptureSettings
from .submissions import RefuseWhenBusy, Submissions

log = logging.getLogger(__name__)


def create_app(settings: CaptureSettings) -> FastAPI:
    handlers = CaptureHandlers(settings.intake_rules, settings.risk_rules(), settings.early_cancel_window)
    submissions = Submissions(
        lambda: runtime.pool,
        handlers,
        round_size=settings.intake_round_size,
        wait_limit=settings.intake_wait_limit_seconds,
    )
    # The orders waiting at this intake are a backlog of the order path no group's lag shows: its watch counts them.
    runtime = Runtime(settings, waiting_at_intake=submissions.unanswered)

    async def expire_held_cancel_requests() -> None:
        # Every instance sweeps; a request is expired by one of them (the update re-checks its state).
        while True:
            await asyncio.sleep(settings.early_cancel_sweep_seconds)
            try:
                async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
                    await handlers.expire_held_cancel_requests(conn, now())
            except Exception as exc:  # the database may be away for a while: the next sweep catches up
                log.warning("held cancel requests not swept (%s)", exc.__class__.__name__)

    async def expire_holds() -> None:
        # Every instance sweeps; the orders are locked skipping those another holds, so each is cancelled once.
        # Credit holds are looked at again too: one skipped while another transaction held it is not forgotten.
        while True:
            await asyncio.sleep(settings.hold_sweep_seconds)
            try:
                async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
                    await handlers.expire_holds(conn, now())
                async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
                    await handlers.review_credit(conn, await repository.accounts_on_credit_hold(conn))
            except Exception as exc:  # the database may be away for a while: the next sweep catches up
                log.warning("holds not swept (%s)", exc.__class__.__name__)

    background = {"early-cancel-expiry": expire_held_cancel_requests, "hold-expiry": expire_holds}
    app = service_app(runtime, handlers.routes, prepare=handlers.prepare, background=background, title="OMS capture")
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    # Added last, so it runs first: a refusal while the intake is full reads nothing.
    app.add_middleware(RefuseWhenBusy, submissions=submissions, intakes=INTAKES)
    app.include_router(order_api(runtime, handlers, submissions, settings))
    return app


def main() -> None:
    settings = CaptureSettings()
    serve(create_app(settings), settings)
