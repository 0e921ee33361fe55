"""Allocation's settings."""

from __future__ import annotations

from pathlib import Path

from shared.settings import CommonSettings
from shared.warehouses import DEFAULT_FILE


class AllocationSettings(CommonSettings):
    service: str = "allocation"
    warehouses_file: Path = DEFAULT_FILE
