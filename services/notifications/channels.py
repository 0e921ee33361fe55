"""The ways a message reaches someone: email over SMTP, and signed JSON posted to webhook endpoints. Each
returns per delivery the error (None when accepted) and how long it took; retrying is the dispatcher's job."""

from __future__ import annotations

import asyncio
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import asyncpg
import httpx

from shared.envelope import now

from . import domain, messages
from .settings import NotificationSettings, WebhookEndpoint


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: the error (None when accepted), when it started and how long it took."""

    error: str | None
    started_at: datetime
    duration_ms: int

    @classmethod
    def of(cls, error: str | None, started_at: datetime, started: float) -> Outcome:
        return cls(error, started_at, round((time.perf_counter() - started) * 1000))


class EmailChannel:
    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host = host
        self.port = port
        self.sender = sender

    async def send(self, rows: list[asyncpg.Record]) -> list[Outcome]:
        if not rows:
            return []
        return await asyncio.to_thread(self._deliver, rows)

    def _compose(self, row: asyncpg.Record) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row["email"]
        message["Subject"] = row["subject"]
        message["Message-ID"] = messages.message_id(row["order_id"], row["kind"], row["shipment_key"])
        message["X-OMS-Order-Id"] = str(row["order_id"])
        message["X-OMS-Message-Kind"] = row["kind"]
        message["X-OMS-Shipment-Key"] = row["shipment_key"]
        message.set_content(row["text_body"])
        message.add_alternative(row["html_body"], subtype="html")
        return message

    def _deliver(self, rows: list[asyncpg.Record]) -> list[Outcome]:
        """One SMTP session per batch; per message the error class, None when accepted."""
        started_at, started = now(), time.perf_counter()
        outcomes: list[Outcome] = []
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                for row in rows:
                    sending_at, sending = now(), time.perf_counter()
                    try:
                        smtp.send_message(self._compose(row))
                        error = None
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                        error = exc.__class__.__name__  # refused: this message only
                    except ValueError as exc:
                        error = f"cannot compose: {exc.__class__.__name__}"
                    outcomes.append(Outcome.of(error, sending_at, sending))
        except (OSError, smtplib.SMTPException) as exc:
            # The session broke: what was accepted before stays sent, the rest is tried again later.
            outcomes += [Outcome.of(exc.__class__.__name__, started_at, started)] * (len(rows) - len(outcomes))
        return outcomes


class WebhookChannel:
    """POSTs the stored body with X-OMS-Signature: sha256=<hex HMAC of the raw body>; any 2xx is delivered."""

    def __init__(self, settings: NotificationSettings, client: httpx.AsyncClient) -> None:
        self.secret = settings.webhook_secret.get_secret_value()
        self.client = client

    async def send(self, endpoint: WebhookEndpoint, row: asyncpg.Record, attempt: int) -> Outcome:
        body: bytes = row["body"]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "oms-notifications",
            "X-OMS-Signature": domain.signature(body, self.secret),
            "X-OMS-Message-Id": messages.message_id(row["order_id"], row["kind"], row["shipment_key"]),
            "X-OMS-Delivery-Attempt": str(attempt),
        }
        started_at, started = now(), time.perf_counter()
        try:
            response = await self.client.post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome.of(exc.__class__.__name__, started_at, started)
        return Outcome.of(None if response.is_success else f"HTTP {response.status_code}", started_at, started)
