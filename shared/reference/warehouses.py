"""Warehouses come from configuration (a JSON file named by OMS_WAREHOUSES_FILE)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import time
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "warehouses.json"


@dataclass(frozen=True)
class Warehouse:
    id: str
    name: str
    country: str
    cutoff: time
    priority: int
    # Where the building is (decimal degrees), for routing orders to the nearest one; unknown when absent.
    latitude: float | None = None
    longitude: float | None = None
    # Units of every SKU held back from promises (a buffer against miscounts); per-SKU overrides live elsewhere.
    safety_stock: int = 0


def load_warehouses(path: Path = DEFAULT_FILE) -> tuple[Warehouse, ...]:
    entries = json.loads(path.read_text())
    return tuple(
        Warehouse(
            e["id"],
            e["name"],
            e["country"],
            time.fromisoformat(e["cutoff"]),
            int(e["priority"]),
            _optional_float(e.get("latitude")),
            _optional_float(e.get("longitude")),
            int(e.get("safety_stock", 0)),
        )
        for e in entries
    )


def _optional_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)
