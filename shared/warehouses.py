"""Warehouses come from configuration (a JSON file named by OMS_WAREHOUSES_FILE)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import time
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "deploy" / "config" / "warehouses.json"


@dataclass(frozen=True)
class Warehouse:
    id: str
    name: str
    country: str
    cutoff: time
    priority: int


def load_warehouses(path: Path = DEFAULT_FILE) -> tuple[Warehouse, ...]:
    entries = json.loads(path.read_text())
    return tuple(
        Warehouse(e["id"], e["name"], e["country"], time.fromisoformat(e["cutoff"]), int(e["priority"]))
        for e in entries
    )
