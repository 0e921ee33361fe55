"""The ways a message reaches someone: email over SMTP, and signed JSON posted to webhook endpoints. Each
returns per delivery the error (None when accepted) and how long it took; retrying is the dispatcher's job."""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx

from shared.contracts.envelope import now

from . import domain, messages, mime
from .settings import NotificationSettings, WebhookEndpoint


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: the error (None when accepted), when it started and how long it took.
    `undeliverable`: it cannot succeed as things stand, so it is not tried again."""

    error: str | None
    started_at: datetime
    duration_ms: int
    undeliverable: bool = False

    @classmethod
    def of(cls, error: str | None, started_at: datetime, started: float, undeliverable: bool = False) -> Outcome:
        return cls(error, started_at, round((time.perf_counter() - started) * 1000), undeliverable)


NEEDS_SMTPUTF8 = (
    "the recipient's address needs SMTPUTF8 (a non-ASCII mailbox name), which the mail server does not offer"
)


@dataclass(frozen=True)
class Recipient:
    """An address as SMTP is to carry it: a non-ASCII domain becomes its IDNA (xn--) form, which every server
    takes; only a non-ASCII mailbox name (the part before @) needs the server's SMTPUTF8 extension."""

    address: str
    needs_smtputf8: bool

    @classmethod
    def of(cls, address: str) -> Recipient:
        if address.isascii():
            return cls(address, False)
        mailbox, _, domain = address.rpartition("@")
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:  # not a valid internationalised domain name: only SMTPUTF8 can carry it
            return cls(address, True)
        return cls(f"{mailbox}@{ascii_domain}", not mailbox.isascii())


# Errors that concern one message only: the server refused it or cannot take it; the session goes on.
REFUSED = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
)


class EmailChannel:
    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host = host
        self.port = port
        self.sender = sender

    async def send(self, rows: list[asyncpg.Record]) -> list[Outcome]:
        if not rows:
            return []
        return await asyncio.to_thread(self._deliver, rows)

    def _compose(self, row: asyncpg.Record, recipient: Recipient) -> bytes:
        return mime.compose(
            mime.Mail(
                sender=self.sender,
                to=recipient.address,
                subject=row["subject"],
                message_id=messages.message_id(row["order_id"], row["kind"], row["shipment_key"]),
                order_id=str(row["order_id"]),
                kind=row["kind"],
                shipment_key=row["shipment_key"],
                text=row["text_body"],
                html=row["html_body"],
            )
        )

    def _deliver(self, rows: list[asyncpg.Record]) -> list[Outcome]:
        """One SMTP session for the batch, each message on its own: one that fails, even one that breaks the
        session, fails alone (the next one opens a new session). Only when no session can be opened do the
        rest wait for their retry."""
        outcomes: list[Outcome] = []
        smtp: smtplib.SMTP | None = None
        try:
            for index, row in enumerate(rows):
                started_at, started = now(), time.perf_counter()
                if smtp is None:
                    try:
                        smtp = smtplib.SMTP(self.host, self.port, timeout=10)
                        smtp.ehlo()
                    except (OSError, smtplib.SMTPException) as exc:
                        failed = Outcome.of(exc.__class__.__name__, started_at, started)
                        return outcomes + [failed] * (len(rows) - index)
                outcome, session_broken = self._send_one(smtp, row, started_at, started)
                outcomes.append(outcome)
                if session_broken:
                    _close(smtp)
                    smtp = None
            return outcomes
        finally:
            if smtp is not None:
                _close(smtp)

    def _send_one(
        self, smtp: smtplib.SMTP, row: asyncpg.Record, started_at: datetime, started: float
    ) -> tuple[Outcome, bool]:
        """The outcome of one message, and whether the session broke on it."""
        recipient = Recipient.of(row["email"])
        if recipient.needs_smtputf8 and not smtp.has_extn("smtputf8"):
            return Outcome.of(NEEDS_SMTPUTF8, started_at, started, undeliverable=True), False
        # Only the recipient's mailbox can be other than ASCII (the headers are encoded otherwise); the server
        # offers SMTPUTF8 when it needs to, checked above.
        options = ["SMTPUTF8", "BODY=8BITMIME"] if recipient.needs_smtputf8 else []
        try:
            transmit(smtp, self.sender, recipient.address, self._compose(row, recipient), options)
        except REFUSED as exc:
            return Outcome.of(exc.__class__.__name__, started_at, started), False
        except ValueError as exc:
            return Outcome.of(f"cannot compose: {exc.__class__.__name__}", started_at, started), False
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome.of(exc.__class__.__name__, started_at, started), True
        return Outcome.of(None, started_at, started), False


# An address that goes into a command as it is: nothing smtplib's quoting would have to deal with.
PLAIN_ADDRESS = re.compile(r"[^<>()\[\]\\,;:\s\"@]+@[^<>()\[\]\\,;:\s\"@]+")
LEADING_DOT = re.compile(rb"(?m)^\.")


def transmit(smtp: smtplib.SMTP, sender: str, to: str, message: bytes, options: list[str]) -> None:
    """Hand one message over as smtplib.sendmail does (raising what it raises), but with MAIL, RCPT and DATA
    sent together when the server offers PIPELINING (RFC 2920): two round trips per message instead of four, and
    each round trip costs a write and a read on both sides."""
    if not (smtp.has_extn("pipelining") and PLAIN_ADDRESS.fullmatch(sender) and PLAIN_ADDRESS.fullmatch(to)):
        smtp.sendmail(sender, [to], message, options)
        return
    if smtp.has_extn("size"):
        options = [f"SIZE={len(message)}", *options]
    mail_from = " ".join([f"MAIL FROM:<{sender}>", *options])
    smtp.send(f"{mail_from}\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode("utf-8" if "SMTPUTF8" in options else "ascii"))
    mail, rcpt, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
    accepted = mail[0] == 250 and rcpt[0] in (250, 251)
    if data[0] == 354:
        # The message when MAIL and RCPT were taken; else an empty one, only to end the DATA the server began.
        content = LEADING_DOT.sub(b"..", message) if accepted else b""
        smtp.send(content + (b"" if content.endswith(b"\r\n") or not content else b"\r\n") + b".\r\n")
        data = smtp.getreply()
    if 421 in (mail[0], rcpt[0], data[0]):  # the server is closing the session
        smtp.close()
        raise smtplib.SMTPServerDisconnected("the server closed the session (421)")
    if accepted and data[0] == 250:
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()
    if mail[0] != 250:
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if not accepted:
        raise smtplib.SMTPRecipientsRefused({to: rcpt})
    raise smtplib.SMTPDataError(*data)


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


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
