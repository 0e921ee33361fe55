"""Customer mail to a relay off the host goes over TLS: STARTTLS before anything else is said, the relay's certificate
and name checked, then the relay's login; a relay that does not offer STARTTLS, or whose certificate another CA signed,
is sent nothing. Both sides are real: an aiosmtpd server on a loopback port with a certificate of a test CA, and the
notifications' client (smtplib)."""

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from pydantic import ValidationError

from deploy.local.stack import certificates
from services.notifications.channels import EmailChannel, Outcome
from services.notifications.settings import NotificationSettings
from shared.backbone.tls import verifying
from tests.production import as_production

LOGIN = ("notifications", "relay-password")


class Relay:
    """Keeps what it was handed, and whether the session was over TLS and logged in."""

    def __init__(self) -> None:
        self.received: list[tuple[bool, Any, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((session.ssl is not None, session.authenticated, envelope.original_content))
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    given = (data.login.decode(), data.password.decode()) if isinstance(data, LoginPassword) else None
    return AuthResult(success=given == LOGIN, handled=False)  # not handled: aiosmtpd answers a failure with 535


@pytest.fixture(scope="module")
def authority() -> certificates.Authority:
    return certificates.Authority.new("the relay's CA")


@pytest.fixture
def ca_file(tmp_path: Path, authority: certificates.Authority) -> Path:
    return authority.save(tmp_path / "ca.pem")


@pytest.fixture
def server_tls(tmp_path: Path, authority: certificates.Authority) -> ssl.SSLContext:
    """The relay's side: a certificate of the relay's CA for 127.0.0.1."""
    key, certificate = authority.issue()
    (tmp_path / "relay.pem").write_bytes(certificates.pem(certificate))
    (tmp_path / "relay.key").write_bytes(certificates.key_pem(key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "relay.pem", tmp_path / "relay.key")
    return context


async def serve(session: Callable[[], SMTP]) -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(session, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
async def relay(server_tls: ssl.SSLContext) -> AsyncIterator[tuple[Relay, int]]:
    """A submission relay: STARTTLS required, then a login."""
    handler = Relay()
    session = partial(
        SMTP, handler, tls_context=server_tls, require_starttls=True, auth_required=True, authenticator=authenticate
    )
    async for port in serve(session):
        yield handler, port


@pytest.fixture
async def plain_relay() -> AsyncIterator[tuple[Relay, int]]:
    """A relay that offers no STARTTLS."""
    handler = Relay()
    async for port in serve(partial(SMTP, handler)):
        yield handler, port


def message_row() -> dict[str, Any]:
    return {
        "email": "jane@example.test",
        "subject": "Your order is on its way",
        "text_body": "It left the warehouse today.\n",
        "html_body": "<p>It left the warehouse today.</p>",
        "order_id": uuid.uuid4(),
        "kind": "shipped",
        "shipment_key": "S1",
    }


async def send_one(port: int, ca_file: Path | None = None, login: tuple[str, str] | None = LOGIN) -> Outcome:
    """One message through the notifications' client, over STARTTLS checked with `ca_file` when given."""
    tls = verifying(str(ca_file)) if ca_file is not None else None
    channel = EmailChannel("127.0.0.1", port, "orders@oms.local", tls=tls, login=login)
    (outcome,) = await channel.send([message_row()])  # type: ignore[list-item]
    return outcome


async def test_mail_goes_over_starttls_to_the_relay_it_checked_and_logged_in_to(
    relay: tuple[Relay, int], ca_file: Path
) -> None:
    handler, port = relay
    assert (await send_one(port, ca_file)).error is None
    ((over_tls, logged_in, content),) = handler.received
    assert (over_tls, logged_in) == (True, True)
    assert b"It left the warehouse today." in content


async def test_without_starttls_a_relay_that_requires_it_takes_nothing(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    outcome = await send_one(port, login=None)
    # its MAIL refused (530: STARTTLS first), tried again later, once configured
    assert outcome.error == "SMTPSenderRefused" and not outcome.undeliverable
    assert handler.received == []


async def test_a_relay_that_does_not_offer_starttls_is_sent_nothing(
    plain_relay: tuple[Relay, int], ca_file: Path
) -> None:
    handler, port = plain_relay
    assert (await send_one(port, ca_file)).error == "SMTPNotSupportedError"
    assert handler.received == []


async def test_a_relay_whose_certificate_another_ca_signed_is_sent_nothing(
    relay: tuple[Relay, int], tmp_path: Path
) -> None:
    handler, port = relay
    other = certificates.Authority.new("someone else's CA").save(tmp_path / "other.pem")
    assert (await send_one(port, other)).error == "SSLCertVerificationError"
    assert handler.received == []


async def test_a_wrong_login_is_refused_and_nothing_is_sent(relay: tuple[Relay, int], ca_file: Path) -> None:
    handler, port = relay
    outcome = await send_one(port, ca_file, login=("notifications", "not-the-password"))
    assert outcome.error == "SMTPAuthenticationError" and not outcome.undeliverable
    assert handler.received == []


def test_production_refuses_a_relay_off_its_host_without_starttls(monkeypatch: pytest.MonkeyPatch) -> None:
    as_production(monkeypatch, OMS_WEBHOOK_SECRET="a-real-one", OMS_SMTP_HOST="smtp.example.org")
    with pytest.raises(ValidationError, match="OMS_SMTP_STARTTLS"):
        NotificationSettings()
    monkeypatch.setenv("OMS_SMTP_STARTTLS", "true")
    monkeypatch.setenv("OMS_SMTP_USERNAME", "orders")
    monkeypatch.setenv("OMS_SMTP_PASSWORD", "relay-pw-0451")
    settings = NotificationSettings()
    assert settings.smtp_tls() is not None and settings.smtp_login() == ("orders", "relay-pw-0451")
    assert "relay-pw-0451" not in repr(settings)


def test_a_relays_login_is_never_sent_in_plaintext_off_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_ENVIRONMENT", "development")
    monkeypatch.setenv("OMS_SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("OMS_SMTP_USERNAME", "orders")
    with pytest.raises(ValidationError, match="OMS_SMTP_STARTTLS"):
        NotificationSettings()
    monkeypatch.setenv("OMS_SMTP_HOST", "127.0.0.1")  # the local sink: nothing leaves the host
    assert NotificationSettings().smtp_tls() is None
