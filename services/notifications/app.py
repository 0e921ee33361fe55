"""Notifications' wiring point: the lifecycle consumer and the dispatcher (email and webhooks)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared.backbone.runtime import Runtime, serve, service_app

from . import views
from .channels import EmailChannel
from .dispatcher import Dispatcher, Handoff
from .handlers import NotificationHandlers
from .planning import Planner
from .settings import NotificationSettings


def create_app(settings: NotificationSettings) -> FastAPI:
    runtime = Runtime(settings)
    # One planner renders for both the consumer and the dispatcher; the handoff carries what the one leased to the
    # other.
    planner, handoff = Planner(settings.webhooks), Handoff()

    async def dispatch() -> None:
        email = EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            tls=settings.smtp_tls(),
            login=settings.smtp_login(),
        )
        await Dispatcher(settings, runtime.pool, email, planner, handoff).run()

    handlers = NotificationHandlers(planner, handoff, settings.delivery_lease_seconds)
    app = service_app(
        runtime,
        handlers.routes,
        background={"dispatcher": dispatch},
        title="OMS notifications",
    )
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = NotificationSettings()
    # httpx logs every request with its URL at INFO; webhook URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    serve(create_app(settings), settings)
