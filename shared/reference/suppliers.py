"""Dropship suppliers come from configuration (a JSON file named by OMS_DROPSHIP_FILE): who they are, the SKUs they
ship to customers themselves (codes or patterns like `DS-ACME-*`), how long they have to answer a purchase order, and
how many business days after it they must ship. Read once at each service's wiring point (allocation routes by it,
fulfillment issues purchase orders and times them out by it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "dropship.json"


@dataclass(frozen=True)
class Supplier:
    id: str
    name: str
    skus: tuple[str, ...]  # codes or fnmatch patterns
    answer_timeout: timedelta  # no answer within it: the purchase order's lines are routed elsewhere
    ship_by_lead_days: int  # business days from the purchase order to the ship-by date

    def supplies(self, sku: str) -> bool:
        return any(fnmatchcase(sku, pattern) for pattern in self.skus)


@dataclass(frozen=True)
class Suppliers:
    suppliers: tuple[Supplier, ...] = ()

    def supplier_of(self, sku: str) -> Supplier | None:
        """The supplier that ships this SKU: the first in the file that names it (none: a warehouse SKU)."""
        return next((s for s in self.suppliers if s.supplies(sku)), None)

    @property
    def by_id(self) -> Mapping[str, Supplier]:
        return {s.id: s for s in self.suppliers}


def load_suppliers(path: Path = DEFAULT_FILE) -> Suppliers:
    entries = json.loads(path.read_text()).get("suppliers", [])
    suppliers = tuple(
        Supplier(
            id=str(e["id"]),
            name=str(e["name"]),
            skus=tuple(str(s) for s in e["skus"]),
            answer_timeout=timedelta(seconds=float(e["answer_timeout_seconds"])),
            ship_by_lead_days=int(e["ship_by_lead_days"]),
        )
        for e in entries
    )
    if len({s.id for s in suppliers}) != len(suppliers):
        raise ValueError(f"{path}: a supplier id appears twice")
    if bad := [s.id for s in suppliers if s.answer_timeout <= timedelta(0) or s.ship_by_lead_days < 0]:
        raise ValueError(f"{path}: suppliers {bad} need a positive answer timeout and lead days of 0 or more")
    return Suppliers(suppliers)
