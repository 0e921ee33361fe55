"""The cost model: what a shipment costs by the carriers' rate table (the service's price for the destination's zone
at the parcel's weight, weighed from the catalogue) plus a cost per pick (one per line of the shipment)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.reference.rates import ShippingRules

from . import domain


class CostModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    per_pick: Decimal = Field(default=Decimal("0"), ge=0)


def carrier_price(
    rules: ShippingRules, carrier: str, service: str | None, country: str | None, weight_grams: int
) -> Decimal | None:
    found = rules.carrier(carrier)
    offered = next((s for s in found.services if s.code == service), None) if found else None
    zone = found.zone_of(country) if found and country else None
    return offered.price(zone, weight_grams) if offered and zone else None


def order_cost(
    rules: ShippingRules,
    model: CostModel,
    country: str | None,
    shipments: Sequence[Mapping[str, Any]],
    weights: Mapping[str, int],
) -> Decimal | None:
    """The order's shipments priced; None when one of them cannot be (unknown SKU weight, carrier, service or zone)."""
    total = Decimal(0)
    for shipment in shipments:
        lines: Mapping[str, int] = shipment["lines"]
        if any(sku not in weights for sku in lines):
            return None
        weight = sum(weights[sku] * n for sku, n in lines.items())
        price = carrier_price(rules, shipment["carrier"], shipment["service"], country, weight)
        cost = domain.shipment_cost(price, len(lines), model.per_pick)
        if cost is None:
            return None
        total += cost
    return total
