"""Dropship routing: the lines of an order a supplier ships to the customer itself go to that supplier, one purchase
order per (order, supplier); the other lines are routed to warehouses as always (services.allocation.routing). Lines
a supplier declines come back and are routed to a warehouse, or wait for stock. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from shared.contracts.backorders import without
from shared.reference.suppliers import Suppliers

from .orders import Allocated, Order, Outcome, PurchaseOrder
from .routing import describe
from .serving import Serving


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


# ---- the aggregate's dropship operations (services.allocation.inventory calls them) ----


def place(serving: Serving, order: Order) -> list[Outcome]:
    """A new order with dropship lines (`order.dropship`, its units per supplier; `order.backordered`, every unit
    still ordered): each supplier's lines become one purchase order, the rest is routed to warehouses as usual. An
    order that will not wait for stock and cannot have its warehouse lines now is rejected whole: nothing is bought."""
    still_ordered = dict(order.backordered)
    order.dropship = {
        supplier: kept
        for supplier, lines in sorted(order.dropship.items())
        if (kept := {sku: n for sku, q in lines.items() if (n := min(q, still_ordered.get(sku, 0))) > 0})
    }
    with_suppliers = {sku: n for lines in order.dropship.values() for sku, n in lines.items()}
    order.backordered = without(still_ordered, with_suppliers)
    outcomes = serving.serve(set(order.backordered), focus=order) if order.backordered else []
    if order.status == "unfulfillable" or not order.dropship:
        order.dropship = {}
        return outcomes
    reason = "dropship: " + "; ".join(f"{describe(lines)} from {s}" for s, lines in order.dropship.items())
    purchase_orders = tuple(PurchaseOrder(serving.new_id(), s, dict(lines)) for s, lines in order.dropship.items())
    # One announcement when the warehouse lines were reserved too; otherwise the purchase orders go first.
    first = next((o for o in outcomes if isinstance(o, Allocated) and o.order_id == order.order_id), None)
    if first is not None:
        merged = replace(first, purchase_orders=purchase_orders, reason=f"{first.reason}; {reason}")
        return [merged if o is first else o for o in outcomes]
    if not order.backordered:
        order.status, order.reason = "allocated", reason
    return [Allocated(order.order_id, (), dict(order.backordered), reason, purchase_orders), *outcomes]


def decline(serving: Serving, order: Order, supplier_id: str, lines: Mapping[str, int], context: str) -> list[Outcome]:
    """A supplier will not ship these units (rejected, the rest of a partial acceptance, no answer in time): they
    are routed to a warehouse that has them with the same guards as any order, or wait for stock. Only units still
    with that supplier count, so a repeated notice changes nothing."""
    held = order.dropship.get(supplier_id, {})
    back = {sku: n for sku, q in sorted(lines.items()) if (n := min(q, held.get(sku, 0))) > 0}
    if not back:
        return []
    order.dropship[supplier_id] = without(held, back)
    if not order.dropship[supplier_id]:
        del order.dropship[supplier_id]
    serving.touched_orders.add(order.order_id)
    if order.status in ("cancelled", "unfulfillable"):  # nothing to send any more: the units count as cancelled
        for sku, n in back.items():
            order.cancelled[sku] = order.cancelled.get(sku, 0) + n
        return []
    for sku, n in back.items():
        order.backordered[sku] = order.backordered.get(sku, 0) + n
    return serving.serve(set(back), focus=order, context=context)


def withdrawn(order: Order, lines: Mapping[str, int] | None) -> dict[str, int]:
    """A cancellation fulfillment accepted withdrew every open purchase order holding a cancelled SKU (all of them
    for the whole order), as it withdraws pick tasks: their units leave the suppliers and wait again, for the
    cancellation to take what it asks and the rest to be routed anew. Returns those units."""
    back: dict[str, int] = {}
    for supplier, held in sorted(order.dropship.items()):
        if lines is None or held.keys() & {sku for sku, n in lines.items() if n > 0}:
            for sku, n in held.items():
                back[sku] = back.get(sku, 0) + n
            del order.dropship[supplier]
    return back
