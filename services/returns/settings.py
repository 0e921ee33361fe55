"""Returns' settings: the returns policy, the rate table labels are priced from, the warehouses, the expiry sweep
and the clock."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, Field, model_validator

from shared.backbone.settings import CommonSettings
from shared.contracts.envelope import now
from shared.reference.rates import ShippingRules
from shared.reference.warehouses import DEFAULT_FILE as WAREHOUSES_FILE
from shared.reference.warehouses import Warehouse, load_warehouses

from .handlers import Clock, PaymentRetries
from .policy import ReturnsPolicy

CONFIG = WAREHOUSES_FILE.parent


class ReturnsSettings(CommonSettings):
    service: str = "returns"
    returns_policy_file: Path = CONFIG / "returns.json"
    carriers_file: Path = CONFIG / "carriers.json"
    warehouses_file: Path = WAREHOUSES_FILE
    # Open RMAs are checked for expiry this often.
    rma_expiry_sweep_seconds: float = Field(default=60, gt=0)
    # The return rate per channel (a gauge) is refreshed this often.
    return_rate_seconds: float = Field(default=30, gt=0)
    # Refunds and exchange charges: asked again after a retriable failure (base x 2^n seconds) or no answer in the
    # timeout, at most this many times in all; due ones are looked for this often.
    refund_max_attempts: int = Field(default=5, ge=1, le=50)
    refund_retry_base_seconds: float = Field(default=30.0, gt=0)
    refund_answer_timeout_seconds: float = Field(default=300.0, gt=0)
    refund_sweep_seconds: float = Field(default=1.0, gt=0)
    # Tests only: the service's clock starts at this instant and runs on from there (OMS_CLOCK_START).
    clock_start: AwareDatetime | None = None

    @model_validator(mode="after")
    def _real_clock_in_production(self) -> ReturnsSettings:
        if self.environment == "production" and self.clock_start is not None:
            raise ValueError("OMS_CLOCK_START is for tests only")
        return self

    def policy(self) -> ReturnsPolicy:
        return ReturnsPolicy.model_validate_json(self.returns_policy_file.read_bytes())

    def shipping_rules(self) -> ShippingRules:
        return ShippingRules.model_validate_json(self.carriers_file.read_bytes())

    def warehouses(self) -> dict[str, Warehouse]:
        return {w.id: w for w in load_warehouses(self.warehouses_file)}

    def payment_retries(self) -> PaymentRetries:
        return PaymentRetries(
            self.refund_max_attempts, self.refund_retry_base_seconds, self.refund_answer_timeout_seconds
        )

    def clock(self) -> Clock:
        if self.clock_start is None:
            return now
        start, started = self.clock_start, time.monotonic()

        def clock() -> datetime:
            return start + timedelta(seconds=time.monotonic() - started)

        return clock
