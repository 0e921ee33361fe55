"""Allocation's settings, and the routing configuration they point to.

Safety stock: each warehouse's `safety_stock` in the warehouses file is its default for every SKU;
`deploy/config/allocation.json` overrides it per SKU (`safety_stock.skus`, every warehouse) or per
warehouse and SKU (`safety_stock.warehouses.<id>.<sku>`). `max_shipments` caps the shipments one
routing decision may create, per channel, with a default. `replenishment` holds the reorder rules per warehouse
and SKU (or SKU pattern) and how demand history is read (services.allocation.replenishment). `priorities` holds
the points of an order's priority and how waiting orders are ranked (services.allocation.priority); the promise it
weighs comes from the shipping rules' calendar (`carriers.json`, as fulfillment reads it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from shared.backbone.settings import CommonSettings
from shared.reference.rates import ShippingRules
from shared.reference.suppliers import DEFAULT_FILE as DROPSHIP_FILE
from shared.reference.warehouses import DEFAULT_FILE, load_warehouses

from .priority import PriorityRules, Ranking, Tier
from .replenishment import Policy, ReorderRule, ReorderRules
from .routing import DEFAULT_MAX_SHIPMENTS, Network

DEFAULT_ALLOCATION_FILE = DEFAULT_FILE.parent / "allocation.json"
DEFAULT_CARRIERS_FILE = DEFAULT_FILE.parent / "carriers.json"


class AllocationSettings(CommonSettings):
    service: str = "allocation"
    warehouses_file: Path = DEFAULT_FILE
    # Operations: a SKU whose available-to-promise is at or below this counts as low stock (metrics, alerts).
    low_stock_threshold: int = 5
    stock_levels_seconds: float = 10.0
    allocation_file: Path = DEFAULT_ALLOCATION_FILE
    carriers_file: Path = DEFAULT_CARRIERS_FILE
    dropship_file: Path = DROPSHIP_FILE


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


def load_priorities(allocation_file: Path, carriers_file: Path) -> PriorityRules:
    """The priority rules; without a `priorities` section every order has the same priority (first come first
    served)."""
    shipping = ShippingRules.model_validate_json(carriers_file.read_bytes())
    config = json.loads(allocation_file.read_text()).get("priorities", {})
    cutoff, promise, age = config.get("cutoff", {}), config.get("promise", {}), config.get("age", {})
    levels = {str(level): int(points) for level, points in config.get("service_levels", {}).items()}
    if unknown := set(levels) - set(shipping.promise_business_days):
        raise ValueError(f"priority points for unknown service levels: {sorted(unknown)}")
    return PriorityRules(
        shipping=shipping,
        service_levels=levels,
        cutoff_points=int(cutoff.get("points", 0)),
        cutoff_window_minutes=int(cutoff.get("window_minutes", 120)),
        cutoff_service_levels=frozenset(cutoff.get("service_levels", [])),
        promise_points_per_day=int(promise.get("points_per_day", 0)),
        promise_horizon_days=int(promise.get("horizon_days", 0)),
        tiers=tuple(
            Tier(
                name=str(t["name"]),
                points=int(t["points"]),
                channels=frozenset(t.get("channels", [])),
                domains=frozenset(d.lower() for d in t.get("domains", [])),
                emails=frozenset(e.strip().lower() for e in t.get("emails", [])),
                accounts=frozenset(t.get("accounts", [])),
                any_account=bool(t.get("any_account", False)),
            )
            for t in config.get("tiers", [])
        ),
        ranking=Ranking(
            band_width=max(1, int(config.get("band_width", 100))),
            age_points_per_hour=int(age.get("points_per_hour", 0)),
            age_max_points=int(age.get("max_points", 0)),
        ),
    )
