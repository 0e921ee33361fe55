"""The ways a message reaches someone: email over SMTP, and signed JSON posted to webhook endpoints. Each
returns per delivery the error (None when accepted) and how long it took; retrying is the dispatcher's job."""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx

from shared.contracts.envelope import now

from . import domain, messages, mime
from .planning import key_of
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
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        """`tls`: STARTTLS first, the relay checked with this context (a relay that does not offer it is not sent
        to); `login`: the relay's user and password (AUTH, after STARTTLS)."""
        self.host = host
        self.port = port
        self.sender = sender
        self.tls = tls
        self.login = login
        # The sender goes into commands as it is (else smtplib's sendmail quotes it): the same for every message.
        self.plain_sender = sender.isascii() and PLAIN_ADDRESS.fullmatch(sender) is not None

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
                message_id=messages.message_id(*key_of(row)),
                order_id=str(row["order_id"]),
                kind=row["kind"],
                shipment_key=row["shipment_key"],
                text=row["text_body"],
                html=row["html_body"],
            )
        )

    def _deliver(self, rows: list[asyncpg.Record]) -> list[Outcome]:
        """One SMTP session for the batch, each message on its own: one that fails, even one that breaks the
        session, fails alone (the ones after it go in a new session). Only when no session can be opened do the
        rest wait for their retry. Where the server takes groups (`hand_over`), messages go in groups."""
        outcomes: dict[int, Outcome] = {}
        waiting = deque(range(len(rows)))
        smtp: smtplib.SMTP | None = None
        try:
            while waiting:
                started_at, started = now(), time.perf_counter()
                if smtp is None:
                    try:
                        smtp = self._session()
                    except (OSError, smtplib.SMTPException) as exc:
                        outcomes.update(dict.fromkeys(waiting, Outcome.of(exc.__class__.__name__, started_at, started)))
                        break
                if takes_groups(smtp) and self._plain(rows[waiting[0]]):
                    broken = self._send_group(smtp, rows, waiting, outcomes)
                else:
                    index = waiting.popleft()
                    outcomes[index], broken = self._send_one(smtp, rows[index], started_at, started)
                if broken:
                    _close(smtp)
                    smtp = None
            return [outcomes[index] for index in range(len(rows))]
        finally:
            if smtp is not None:
                _close(smtp)

    def _session(self) -> smtplib.SMTP:
        """A session with the relay, over TLS and logged in when the settings say so; any failure closes it."""
        smtp = smtplib.SMTP(self.host, self.port, timeout=10)
        try:
            smtp.ehlo()
            if self.tls is not None:
                smtp.starttls(context=self.tls)  # SMTPNotSupportedError when not offered: nothing sent in clear
                smtp.ehlo()
            if self.login is not None:
                smtp.login(*self.login)
        except BaseException:
            _close(smtp)
            raise
        return smtp

    def _plain(self, row: asyncpg.Record) -> bool:
        """Whether the message's addresses go into commands as they are (else smtplib's sendmail quotes them)."""
        return self.plain_sender and PLAIN_ADDRESS.fullmatch(Recipient.of(row["email"]).address) is not None

    def _letter(
        self, smtp: smtplib.SMTP, row: asyncpg.Record, started_at: datetime, started: float
    ) -> Letter | Outcome:
        """The message to hand over, or the outcome when it cannot be."""
        recipient = Recipient.of(row["email"])
        if recipient.needs_smtputf8 and not smtp.has_extn("smtputf8"):
            return Outcome.of(NEEDS_SMTPUTF8, started_at, started, undeliverable=True)
        # Only the recipient's mailbox can be other than ASCII (the headers are encoded otherwise); the server
        # offers SMTPUTF8 when it needs to, checked above.
        options = ("SMTPUTF8", "BODY=8BITMIME") if recipient.needs_smtputf8 else ()
        try:
            return Letter(recipient.address, self._compose(row, recipient), options)
        except ValueError as exc:
            return Outcome.of(f"cannot compose: {exc.__class__.__name__}", started_at, started)

    def _send_one(
        self, smtp: smtplib.SMTP, row: asyncpg.Record, started_at: datetime, started: float
    ) -> tuple[Outcome, bool]:
        """The outcome of one message, and whether the session broke on it."""
        letter = self._letter(smtp, row, started_at, started)
        if isinstance(letter, Outcome):
            return letter, False
        try:
            transmit(smtp, self.sender, letter.to, letter.content, list(letter.options))
        except REFUSED as exc:
            return Outcome.of(exc.__class__.__name__, started_at, started), False
        except ValueError as exc:
            return Outcome.of(f"cannot compose: {exc.__class__.__name__}", started_at, started), False
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome.of(exc.__class__.__name__, started_at, started), True
        return Outcome.of(None, started_at, started), False

    def _send_group(
        self, smtp: smtplib.SMTP, rows: list[asyncpg.Record], waiting: deque[int], outcomes: dict[int, Outcome]
    ) -> bool:
        """Hand over the next waiting messages with plain addresses, up to a group, in one go; any left in doubt
        go back to the front of the queue. Whether the session broke. Each message's outcome carries the time
        its group took."""
        started_at, started = now(), time.perf_counter()
        group: list[tuple[int, Letter]] = []
        while waiting and len(group) < GROUP and self._plain(rows[waiting[0]]):
            index = waiting.popleft()
            letter = self._letter(smtp, rows[index], started_at, started)
            if isinstance(letter, Outcome):
                outcomes[index] = letter
            else:
                group.append((index, letter))
        if not group:
            return False
        handed, broken = hand_over(smtp, self.sender, [letter for _, letter in group])
        again = []
        for (index, _), result in zip(group, handed, strict=True):
            if result is AGAIN:
                again.append(index)
            else:
                outcomes[index] = Outcome.of(None if result is None else result.__class__.__name__, started_at, started)
        waiting.extendleft(reversed(again))
        return broken


@dataclass(frozen=True)
class Letter:
    """A message as it is handed over: its recipient's address, its content and its MAIL options."""

    to: str
    content: bytes
    options: tuple[str, ...]


# An address that goes into a command as it is: nothing smtplib's quoting would have to deal with.
PLAIN_ADDRESS = re.compile(r"[^<>()\[\]\\,;:\s\"@]+@[^<>()\[\]\\,;:\s\"@]+")
LEADING_DOT = re.compile(rb"(?m)^\.")
# Messages handed over in one write at most: the server's replies to a group, written while the group is still
# arriving, must fit in the sockets' buffers, since the client reads none until the group is sent.
GROUP = 50
AGAIN = object()  # a message whose refusal may be the session's doubt after an earlier refusal: sent again


def takes_groups(smtp: smtplib.SMTP) -> bool:
    return bool(smtp.has_extn("chunking") and smtp.has_extn("pipelining"))


def hand_over(smtp: smtplib.SMTP, sender: str, letters: list[Letter]) -> tuple[list[Exception | object | None], bool]:
    """Hand over several messages in one write, each as MAIL, RCPT and BDAT with its whole content (RFC 3030
    CHUNKING, pipelined as RFC 2920 allows), then read their replies: one round trip for the group, where DATA
    costs two per message (its commands, then its content after the server's 354), and the content is sent as
    it is, without dot-stuffing.

    Per message: None when accepted, the refusal as `transmit` raises it, or AGAIN. After a refused BDAT the
    session's state is in doubt until RSET (RFC 3030), so a refusal that follows one in the same group is not
    taken as the message's own: it is sent again, after the RSET that ends the group. The first message of a
    group is always settled, so the groups go on. Whether the session broke: the message it broke on gets the
    error, the rest of the group AGAIN."""
    commands = []
    for letter in letters:
        commands.append(
            _commands(smtp, sender, letter.to, letter.content, letter.options, f"BDAT {len(letter.content)} LAST")
        )
        commands.append(letter.content)
    handed: list[Exception | object | None] = []
    in_doubt = False
    try:
        smtp.send(b"".join(commands))
        for letter in letters:
            mail, rcpt, bdat = smtp.getreply(), smtp.getreply(), smtp.getreply()
            _closing(smtp, mail, rcpt, bdat)
            refused = refusal(sender, letter.to, mail, rcpt, bdat)
            handed.append(AGAIN if refused is not None and in_doubt else refused)
            in_doubt = in_doubt or refused is not None
        if in_doubt:
            smtp.rset()
    except (OSError, smtplib.SMTPException) as exc:
        if len(handed) < len(letters):
            handed.append(exc)
        return handed + [AGAIN] * (len(letters) - len(handed)), True
    return handed, False


def transmit(smtp: smtplib.SMTP, sender: str, to: str, message: bytes, options: list[str]) -> None:
    """Hand one message over as smtplib.sendmail does (raising what it raises), but with MAIL, RCPT and DATA
    sent together when the server offers PIPELINING (RFC 2920): two round trips per message instead of four, and
    each round trip costs a write and a read on both sides."""
    if not (smtp.has_extn("pipelining") and PLAIN_ADDRESS.fullmatch(sender) and PLAIN_ADDRESS.fullmatch(to)):
        smtp.sendmail(sender, [to], message, options)
        return
    smtp.send(_commands(smtp, sender, to, message, options, "DATA"))
    mail, rcpt, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
    if data[0] == 354:
        # The message when MAIL and RCPT were taken; else an empty one, only to end the DATA the server began.
        accepted = mail[0] == 250 and rcpt[0] in (250, 251)
        content = LEADING_DOT.sub(b"..", message) if accepted else b""
        smtp.send(content + (b"" if content.endswith(b"\r\n") or not content else b"\r\n") + b".\r\n")
        data = smtp.getreply()
    _closing(smtp, mail, rcpt, data)
    refused = refusal(sender, to, mail, rcpt, data)
    if refused is None:
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()
    raise refused


def _commands(smtp: smtplib.SMTP, sender: str, to: str, message: bytes, options: Sequence[str], last: str) -> bytes:
    """MAIL (with the message's size where the server takes SIZE), RCPT and `last` (DATA or BDAT), as sent
    together."""
    mail_options = [f"SIZE={len(message)}", *options] if smtp.has_extn("size") else list(options)
    mail_from = " ".join([f"MAIL FROM:<{sender}>", *mail_options])
    return f"{mail_from}\r\nRCPT TO:<{to}>\r\n{last}\r\n".encode("utf-8" if "SMTPUTF8" in options else "ascii")


def _closing(smtp: smtplib.SMTP, *replies: tuple[int, bytes]) -> None:
    """Raise when the server is closing the session (421)."""
    if any(code == 421 for code, _ in replies):
        smtp.close()
        raise smtplib.SMTPServerDisconnected("the server closed the session (421)")


def refusal(
    sender: str, to: str, mail: tuple[int, bytes], rcpt: tuple[int, bytes], data: tuple[int, bytes]
) -> smtplib.SMTPException | None:
    """What refused a message, from the replies to its MAIL, RCPT and DATA (or BDAT LAST); None when accepted."""
    if mail[0] != 250:
        return smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if rcpt[0] not in (250, 251):
        return smtplib.SMTPRecipientsRefused({to: rcpt})
    if data[0] != 250:
        return smtplib.SMTPDataError(*data)
    return None


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
            "X-OMS-Message-Id": messages.message_id(*key_of(row)),
            "X-OMS-Delivery-Attempt": str(attempt),
        }
        started_at, started = now(), time.perf_counter()
        try:
            response = await self.client.post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome.of(exc.__class__.__name__, started_at, started)
        return Outcome.of(None if response.is_success else f"HTTP {response.status_code}", started_at, started)
