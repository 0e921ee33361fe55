"""Capture's settings: where it ships, which currencies it takes, the Shopify shops it accepts orders from, the risk
rules and how often holds are looked at."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from shared.backbone.settings import CommonSettings
from shared.contracts.events import ServiceLevel
from shared.reference.warehouses import DEFAULT_FILE as WAREHOUSES_FILE

from .domain import IntakeRules
from .risk import RiskRules

DEVELOPMENT_SHOP = "oms-dev.myshopify.com"
DEVELOPMENT_SHOPIFY_SECRET = "dev-shopify-webhook-secret"  # noqa: S105 - refused in production, below


class CaptureSettings(CommonSettings):
    service: str = "capture"
    shippable_countries: frozenset[str] = frozenset(
        {"AT", "BE", "CH", "DE", "DK", "ES", "FR", "GB", "IE", "IT", "LU", "NL", "PL", "PT", "SE", "US", "CA"}
    )
    currencies: frozenset[str] = frozenset({"EUR", "USD", "GBP"})
    # Shop domain -> the secret Shopify signs that shop's webhooks with (OMS_SHOPIFY_SHOP_SECRETS, JSON).
    shopify_shop_secrets: dict[str, SecretStr] = {DEVELOPMENT_SHOP: SecretStr(DEVELOPMENT_SHOPIFY_SECRET)}
    # A shipping line's code or title (lower case) -> service level; anything else ships standard.
    shopify_service_levels: dict[str, ServiceLevel] = {
        "express": "express",
        "priority": "express",
        "overnight": "overnight",
        "next day": "overnight",
        "next-day": "overnight",
    }

    # A channel's cancel request read before its order is held this long for the order to arrive, then answered
    # as expired; held requests are looked at this often.
    early_cancel_window_seconds: float = Field(default=24 * 3600, gt=0)
    early_cancel_sweep_seconds: float = Field(default=60, gt=0)
    # The risk rules every order is assessed by (velocity, blocklists, ...), and the holds' time limits.
    risk_rules_file: Path = WAREHOUSES_FILE.parent / "risk.json"
    # Holds past their time limit are looked for this often.
    hold_sweep_seconds: float = Field(default=60, gt=0)
    # An order submitted over the API is refused with 503 and Retry-After when those already waiting to be written
    # would take longer than this: a prompt "come back" beats an answer that arrives after the client gave up.
    intake_wait_limit_seconds: float = Field(default=2.0, gt=0)
    # Orders submitted over the API are written together, up to this many per transaction.
    intake_round_size: int = Field(default=200, ge=1, le=5000)

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> CaptureSettings:
        if self.environment == "production" and any(
            secret.get_secret_value() == DEVELOPMENT_SHOPIFY_SECRET for secret in self.shopify_shop_secrets.values()
        ):
            raise ValueError("the development Shopify secret may not be used in production")
        return self

    @property
    def intake_rules(self) -> IntakeRules:
        return IntakeRules(shippable_countries=self.shippable_countries, currencies=self.currencies)

    def risk_rules(self) -> RiskRules:
        return RiskRules.model_validate_json(self.risk_rules_file.read_bytes())

    @property
    def early_cancel_window(self) -> timedelta:
        return timedelta(seconds=self.early_cancel_window_seconds)

    def shopify_secret(self, shop_domain: str) -> str | None:
        wanted = shop_domain.strip().lower()
        secret = next((s for shop, s in self.shopify_shop_secrets.items() if shop.lower() == wanted), None)
        return None if secret is None else secret.get_secret_value()
