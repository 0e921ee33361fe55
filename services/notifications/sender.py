"""Sends pending messages over SMTP and records each as sent in the same transaction that claimed it.

A crash between the SMTP hand-off and that commit resends one message; its stable Message-ID lets the
receiving side recognise the repeat. Failures back off per message and never block the others."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

import asyncpg

from shared import aftercommit
from shared.dispatch import run_dispatch
from shared.metrics import count
from shared.metrics_business import NOTIFICATIONS_SENT
from shared.settings import CommonSettings

from . import domain, repository

log = logging.getLogger(__name__)


class MailSender:
    def __init__(
        self, settings: CommonSettings, pool: asyncpg.Pool, smtp_host: str, smtp_port: int, sender: str
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.sender = sender

    async def run(self) -> None:
        await run_dispatch(self.settings, f"{self.settings.db_role}_messages", self.send_due, repository.SEND_BATCH)

    async def send_due(self) -> int:
        async with self.pool.acquire() as conn, aftercommit.transaction(conn):
            due = await repository.claim_due(conn)
            if not due:
                return 0
            emails = [self._compose(row) for row in due]
            results = await asyncio.to_thread(self._deliver, emails)
            for row, error in zip(due, results, strict=True):
                if error is None:
                    await repository.mark_sent(conn, row["order_id"], row["kind"])
                    count(NOTIFICATIONS_SENT.labels(row["kind"]))
                else:
                    retry_in = min(300.0, 2.0 ** (row["attempts"] + 1))
                    log.warning("message %s for order %s not sent (%s)", row["kind"], row["order_id"], error)
                    await repository.mark_failed(conn, row["order_id"], row["kind"], error, retry_in)
            return len(due)

    def _compose(self, row: asyncpg.Record) -> EmailMessage:
        rendered = domain.render(row["kind"], row["order_id"], row["name"], row["facts"])
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row["email"]
        message["Subject"] = rendered.subject
        message["Message-ID"] = rendered.message_id
        message["X-OMS-Order-Id"] = str(row["order_id"])
        message["X-OMS-Message-Kind"] = row["kind"]
        message.set_content(rendered.body)
        return message

    def _deliver(self, emails: list[EmailMessage]) -> list[str | None]:
        """One SMTP session per batch; the error class per message, None when accepted."""
        try:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
                results: list[str | None] = []
                for email in emails:
                    try:
                        smtp.send_message(email)
                        results.append(None)
                    except smtplib.SMTPException as exc:
                        results.append(exc.__class__.__name__)
                return results
        except (OSError, smtplib.SMTPException) as exc:
            return [exc.__class__.__name__] * len(emails)
