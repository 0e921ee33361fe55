"""Notifications' wiring point: the lifecycle consumer and the dispatcher (email and webhooks)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared.backbone.runtime import Runtime, serve, service_app

from . import views
from .channels import EmailChannel
from .dispatcher import Dispatcher, Handoff, Planning
from .handlers import NotificationHandlers
from .planning import Planner
from .settings import NotificationSettings


def create_app(settings: NotificationSettings) -> FastAPI:
    runtime = Runtime(settings)
    # The handoff carries the deliveries the planning leased to this instance's dispatcher.
    handoff = Handoff()

    async def plan() -> None:
        await Planning(settings, runtime.pool, Planner(settings.webhooks), handoff).run()

    async def dispatch() -> None:
        email = EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            tls=settings.smtp_tls(),
            login=settings.smtp_login(),
        )
        await Dispatcher(settings, runtime.pool, email, handoff).run()

    app = service_app(
        runtime,
        NotificationHandlers().routes,
        background={"planning": plan, "dispatcher": dispatch},
        title="OMS notifications",
    )
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = NotificationSettings()
    # httpx logs every request with its URL at INFO; webhook URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    serve(create_app(settings), settings)
