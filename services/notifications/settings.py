"""Notifications' settings: the SMTP relay, the webhook endpoints and how failed deliveries back off."""

from __future__ import annotations

import ssl

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from shared.backbone.ports import StackPorts
from shared.backbone.settings import CommonSettings
from shared.backbone.tls import loopback, verifying

DEVELOPMENT_WEBHOOK_SECRET = "dev-webhook-signing-secret"  # noqa: S105 - refused in production, below


class WebhookEndpoint(BaseModel):
    """A URL that receives every message of the given sales channels (all of them when none are named)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="short; names the delivery channel")
    url: str = Field(pattern=r"^https?://", max_length=2000)
    sales_channels: frozenset[str] = frozenset()

    @property
    def channel(self) -> str:
        return f"webhook:{self.name}"

    def serves(self, sales_channel: str) -> bool:
        return not self.sales_channels or sales_channel in self.sales_channels


class NotificationSettings(CommonSettings):
    service: str = "notifications"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default_factory=lambda: StackPorts.from_env().smtp)
    mail_from: str = "orders@oms.local"
    # STARTTLS before anything else is said (a relay that does not offer it is not sent to: no fallback to plaintext),
    # the relay's certificate and name checked against `smtp_ca_file`, or the system's CAs (a public relay's).
    smtp_starttls: bool = False
    smtp_ca_file: str = ""
    # The relay's login (AUTH, after STARTTLS), as a submission relay (port 587) asks.
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # OMS_WEBHOOKS='[{"name": "crm", "url": "https://...", "sales_channels": ["shopify"]}]'
    webhooks: list[WebhookEndpoint] = []
    # Signs every webhook body: X-OMS-Signature: sha256=<hex HMAC-SHA256 of the raw body>.
    webhook_secret: SecretStr = SecretStr(DEVELOPMENT_WEBHOOK_SECRET)
    webhook_timeout_seconds: float = 5.0
    # A failed delivery is tried again after base, 2 base, 4 base, ... seconds (at most max), then given up.
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 12
    # Deliveries are leased for this long while they are handed over (an SMTP session, webhook calls): longer than
    # any hand-off may take, so another instance sends a message again only after this one crashed.
    delivery_lease_seconds: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _refuse_development_secret(self) -> NotificationSettings:
        if self.environment == "production" and self.webhook_secret.get_secret_value() == DEVELOPMENT_WEBHOOK_SECRET:
            raise ValueError("OMS_WEBHOOK_SECRET must be set outside development")
        in_clear = not self.smtp_starttls and not loopback(self.smtp_host) and not self.trusted_network
        if in_clear and (self.environment == "production" or self.smtp_username):
            raise ValueError(
                "OMS_SMTP_STARTTLS is not set: customers' mail (and the relay's login) would cross the network in"
                " plaintext (OMS_TRUSTED_NETWORK=true where the network is this deployment's own)"
            )
        if len({endpoint.name for endpoint in self.webhooks}) != len(self.webhooks):
            raise ValueError("webhook endpoint names must be unique")
        return self

    def smtp_tls(self) -> ssl.SSLContext | None:
        """The context STARTTLS checks the relay with, when it is asked for."""
        return verifying(self.smtp_ca_file or None) if self.smtp_starttls else None

    def smtp_login(self) -> tuple[str, str] | None:
        return (self.smtp_username, self.smtp_password.get_secret_value()) if self.smtp_username else None

    def endpoint(self, channel: str) -> WebhookEndpoint | None:
        return next((e for e in self.webhooks if e.channel == channel), None)
