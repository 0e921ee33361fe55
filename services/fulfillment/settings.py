"""Fulfillment's settings: where the shipping rules and the warehouses are configured, and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, model_validator

from shared.backbone.settings import CommonSettings
from shared.contracts.envelope import now
from shared.reference.suppliers import DEFAULT_FILE as DROPSHIP_FILE
from shared.reference.suppliers import Suppliers, load_suppliers
from shared.reference.warehouses import DEFAULT_FILE as WAREHOUSES_FILE
from shared.reference.warehouses import Warehouse, load_warehouses

from .rates import ShippingRules

CARRIERS_FILE = WAREHOUSES_FILE.parent / "carriers.json"
Clock = Callable[[], datetime]


class FulfillmentSettings(CommonSettings):
    service: str = "fulfillment"
    carriers_file: Path = CARRIERS_FILE
    warehouses_file: Path = WAREHOUSES_FILE
    dropship_file: Path = DROPSHIP_FILE
    # How often unanswered purchase orders are checked against their supplier's answer timeout.
    dropship_timeout_check_seconds: float = 1.0
    # Tests only: the service's clock starts at this instant and runs on from there (OMS_CLOCK_START), so
    # cut-off and business-day rules can be exercised on the real stack at a chosen day and hour.
    clock_start: AwareDatetime | None = None

    @model_validator(mode="after")
    def _real_clock_in_production(self) -> FulfillmentSettings:
        if self.environment == "production" and self.clock_start is not None:
            raise ValueError("OMS_CLOCK_START is for tests only")
        return self

    def shipping_rules(self) -> ShippingRules:
        return ShippingRules.model_validate_json(self.carriers_file.read_bytes())

    def suppliers(self) -> Suppliers:
        return load_suppliers(self.dropship_file)

    def warehouses(self) -> dict[str, Warehouse]:
        return {w.id: w for w in load_warehouses(self.warehouses_file)}

    def clock(self) -> Clock:
        if self.clock_start is None:
            return now
        start, started = self.clock_start, time.monotonic()
        return lambda: start + timedelta(seconds=time.monotonic() - started)
