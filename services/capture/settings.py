"""Capture's settings: where it ships and which currencies it takes."""

from __future__ import annotations

from shared.settings import CommonSettings

from .domain import IntakeRules


class CaptureSettings(CommonSettings):
    service: str = "capture"
    shippable_countries: frozenset[str] = frozenset(
        {"AT", "BE", "CH", "DE", "DK", "ES", "FR", "GB", "IE", "IT", "LU", "NL", "PL", "PT", "SE", "US", "CA"}
    )
    currencies: frozenset[str] = frozenset({"EUR", "USD", "GBP"})

    @property
    def intake_rules(self) -> IntakeRules:
        return IntakeRules(shippable_countries=self.shippable_countries, currencies=self.currencies)
