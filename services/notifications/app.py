"""Notifications' wiring point: the lifecycle consumer and the mail sender."""

from __future__ import annotations

from fastapi import FastAPI

from shared import ports
from shared.runtime import Runtime, serve, service_app
from shared.settings import CommonSettings

from . import views
from .handlers import NotificationHandlers
from .sender import MailSender


class NotificationSettings(CommonSettings):
    service: str = "notifications"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = ports.SMTP
    mail_from: str = "orders@oms.local"


def create_app(settings: NotificationSettings) -> FastAPI:
    runtime = Runtime(settings)

    async def send_mail() -> None:
        await MailSender(settings, runtime.pool, settings.smtp_host, settings.smtp_port, settings.mail_from).run()

    app = service_app(
        runtime,
        NotificationHandlers().routes,
        background={"mail-sender": send_mail},
        title="OMS notifications",
    )
    views.add_views(app, runtime)
    return app


def main() -> None:
    settings = NotificationSettings()
    serve(create_app(settings), settings)
