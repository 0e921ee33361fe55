"""Allocation's settings, and the routing configuration they point to.

Safety stock: each warehouse's `safety_stock` in the warehouses file is its default for every SKU;
`deploy/config/allocation.json` overrides it per SKU (`safety_stock.skus`, every warehouse) or per
warehouse and SKU (`safety_stock.warehouses.<id>.<sku>`). `max_shipments` caps the shipments one
routing decision may create, per channel, with a default. `replenishment` holds the reorder rules per warehouse
and SKU (or SKU pattern) and how demand history is read (services.allocation.replenishment).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from shared.backbone.settings import CommonSettings
from shared.reference.warehouses import DEFAULT_FILE, load_warehouses

from .replenishment import Policy, ReorderRule, ReorderRules
from .routing import DEFAULT_MAX_SHIPMENTS, Network

DEFAULT_ALLOCATION_FILE = DEFAULT_FILE.parent / "allocation.json"


class AllocationSettings(CommonSettings):
    service: str = "allocation"
    warehouses_file: Path = DEFAULT_FILE
    # Operations: a SKU whose available-to-promise is at or below this counts as low stock (metrics, alerts).
    low_stock_threshold: int = 5
    stock_levels_seconds: float = 10.0
    allocation_file: Path = DEFAULT_ALLOCATION_FILE


def load_network(warehouses_file: Path, allocation_file: Path) -> Network:
    warehouses = load_warehouses(warehouses_file)
    config = json.loads(allocation_file.read_text())
    safety = config.get("safety_stock", {})
    shipments = config.get("max_shipments", {})
    known = {w.id for w in warehouses}
    per_warehouse = safety.get("warehouses", {})
    if unknown := set(per_warehouse) - known:
        raise ValueError(f"safety stock configured for unknown warehouses: {sorted(unknown)}")
    return Network(
        warehouses=warehouses,
        sku_safety_stock={sku: int(n) for sku, n in safety.get("skus", {}).items()},
        warehouse_sku_safety_stock={
            (w, sku): int(n) for w, by_sku in per_warehouse.items() for sku, n in by_sku.items()
        },
        channel_max_shipments={c: int(n) for c, n in shipments.get("channels", {}).items()},
        default_max_shipments=int(shipments.get("default", DEFAULT_MAX_SHIPMENTS)),
    )


def load_replenishment(allocation_file: Path, warehouse_ids: Iterable[str]) -> Policy:
    config = json.loads(allocation_file.read_text()).get("replenishment", {})
    rules = [
        ReorderRule(
            warehouse_id=str(r["warehouse"]),
            sku=str(r["sku"]),
            minimum=int(r["minimum"]),
            maximum=int(r["maximum"]),
            pack_multiple=int(r.get("pack_multiple", 1)),
            supplier=str(r["supplier"]),
            lead_time_days=int(r["lead_time_days"]),
        )
        for r in config.get("rules", [])
    ]
    if unknown := {r.warehouse_id for r in rules} - set(warehouse_ids):
        raise ValueError(f"reorder rules for unknown warehouses: {sorted(unknown)}")
    return Policy(
        ReorderRules(rules),
        demand_window_days=int(config.get("demand_window_days", 28)),
        service_factor=float(config.get("service_factor", 1.65)),
    )
