"""Dropship routing: the lines of an order a supplier ships to the customer itself go to that supplier, one purchase
order per (order, supplier); the other lines are routed to warehouses as always (services.allocation.routing). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.reference.suppliers import Suppliers


@dataclass(frozen=True)
class Split:
    """An order's units per SKU: those for the warehouses, and those for each supplier (by supplier id)."""

    warehouse: dict[str, int] = field(default_factory=dict)
    dropship: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def dropshipped(self) -> dict[str, int]:
        """Every unit going to a supplier, per SKU (a SKU has one supplier)."""
        return {sku: n for lines in self.dropship.values() for sku, n in lines.items()}


def split(lines: Mapping[str, int], suppliers: Suppliers) -> Split:
    """Split an order's lines into warehouse lines and one set of lines per supplier."""
    result = Split()
    for sku, quantity in sorted(lines.items()):
        if quantity <= 0:
            continue
        supplier = suppliers.supplier_of(sku)
        if supplier is None:
            result.warehouse[sku] = quantity
        else:
            result.dropship.setdefault(supplier.id, {})[sku] = quantity
    return result


def purchase_orders(dropshipped: Mapping[str, int], suppliers: Suppliers) -> dict[str, dict[str, int]]:
    """Units still going to suppliers (after an early cancellation, say), grouped per supplier."""
    return split(dropshipped, suppliers).dropship
