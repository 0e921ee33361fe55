"""An order as allocation knows it, and what the aggregate's operations announce about orders and stock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from .priority import Priority

OrderStatus = Literal["new", "allocated", "backordered", "cancelled", "unfulfillable"]


@dataclass
class Order:
    """An order as allocation knows it. `lines` are the units ordered; `cancelled` and `backordered`
    (waiting for stock) are parts of them; the rest are in reservations."""

    order_id: UUID
    arrived_at: datetime
    channel: str
    policy: Literal["backorder", "reject"]
    ship_to: Mapping[str, Any]
    service_level: str
    lines: dict[str, int]
    backordered: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    status: OrderStatus = "new"
    reason: str | None = None
    # Assessed once, when allocation first took the order (services.allocation.priority).
    priority: Priority = field(default_factory=Priority)
    # Units with dropship suppliers, per supplier id (services.allocation.dropship): neither waiting nor reserved.
    dropship: dict[str, dict[str, int]] = field(default_factory=dict)
    # One more for every change applied (services.allocation.changes); its events carry it.
    version: int = 0

    @property
    def skus(self) -> set[str]:
        return set(self.lines)


# ---- what an operation announces ----


@dataclass(frozen=True)
class NewShipment:
    shipment_id: UUID
    warehouse_id: str
    lines: dict[str, int]


@dataclass(frozen=True)
class PurchaseOrder:
    purchase_order_id: UUID
    supplier_id: str
    lines: dict[str, int]


@dataclass(frozen=True)
class Allocated:
    order_id: UUID
    shipments: tuple[NewShipment, ...]
    backordered: dict[str, int]
    reason: str
    # Lines routed to dropship suppliers, one purchase order per supplier (services.allocation.dropship).
    purchase_orders: tuple[PurchaseOrder, ...] = ()


@dataclass(frozen=True)
class Backordered:
    order_id: UUID
    missing: dict[str, int]
    reason: str


@dataclass(frozen=True)
class Unfulfillable:
    order_id: UUID
    reason: str


@dataclass(frozen=True)
class Cancelled:
    order_id: UUID
    lines: dict[str, int] | None
    reason: str


@dataclass(frozen=True)
class WithdrawalWanted:
    """Units of an accepted cancellation still reserved in a shipment fulfillment had not seen when it accepted
    (the cancellation and the allocation crossed): fulfillment is asked to withdraw them."""

    order_id: UUID
    shipment_id: UUID
    warehouse_id: str
    lines: dict[str, int]
    reason: str


@dataclass(frozen=True)
class CountShort:
    warehouse_id: str
    sku: str
    counted: int
    reserved: int


@dataclass(frozen=True)
class CancelRequest:
    """Units to cancel per sku (None: the whole order), and why."""

    lines: dict[str, int] | None
    reason: str

    def and_then(self, later: CancelRequest) -> CancelRequest:
        """Two requests for an order not seen yet add up; a whole-order one wins; the later reason is kept."""
        if self.lines is None or later.lines is None:
            return CancelRequest(None, later.reason)
        skus = {*self.lines, *later.lines}
        return CancelRequest({s: self.lines.get(s, 0) + later.lines.get(s, 0) for s in skus}, later.reason)


Outcome = Allocated | Backordered | Unfulfillable | Cancelled | WithdrawalWanted | CountShort
