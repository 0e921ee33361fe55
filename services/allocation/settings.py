"""Allocation's settings."""

from __future__ import annotations

from pathlib import Path

from shared.settings import CommonSettings
from shared.warehouses import DEFAULT_FILE


class AllocationSettings(CommonSettings):
    service: str = "allocation"
    warehouses_file: Path = DEFAULT_FILE
    # Operations: a SKU whose available-to-promise is at or below this counts as low stock (metrics, alerts).
    low_stock_threshold: int = 5
    stock_levels_seconds: float = 10.0
