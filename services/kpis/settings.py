"""The KPI service's settings: the definitions' business choices (deploy/config/kpis.json), the rate table the cost
model prices shipments from, and how often and over what window the Prometheus gauges are worked out."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from shared.backbone.settings import CommonSettings
from shared.reference.rates import ShippingRules
from shared.reference.warehouses import DEFAULT_FILE as WAREHOUSES_FILE

from .costs import CostModel
from .domain import Rules

CONFIG = WAREHOUSES_FILE.parent


class KpiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    on_time_tolerance_days: int = Field(default=0, ge=0, le=30)
    damage_reasons: tuple[str, ...] = ("damaged",)
    document_exception_words: tuple[str, ...] = ("address", "document", "label", "customs", "invoice")
    cost: CostModel = CostModel()


class KpiSettings(CommonSettings):
    service: str = "kpis"
    kpis_file: Path = CONFIG / "kpis.json"
    carriers_file: Path = CONFIG / "carriers.json"
    # The gauges cover the orders placed in this many last hours, worked out again this often.
    metrics_window_hours: float = Field(default=24, gt=0, le=24 * 31)
    metrics_refresh_seconds: float = Field(default=30, gt=0)

    def config(self) -> KpiConfig:
        return KpiConfig.model_validate_json(self.kpis_file.read_bytes())

    def shipping_rules(self) -> ShippingRules:
        return ShippingRules.model_validate_json(self.carriers_file.read_bytes())

    def rules(self) -> Rules:
        config = self.config()
        return Rules(
            on_time_tolerance_days=config.on_time_tolerance_days,
            damage_reasons=config.damage_reasons,
            document_exception_words=config.document_exception_words,
            timezone=self.shipping_rules().calendar.timezone,
        )
