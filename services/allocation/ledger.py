"""The stock ledger: units on hand and reserved per (warehouse, sku), and the reservations that hold them.

Pure and in memory. Its invariants: 0 <= reserved <= on_hand per (warehouse, sku), and reserved equals the
units of the open reservations there (the database checks both again at commit). It records what changed,
for the repository to save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

ReservationStatus = Literal["open", "shipped", "released"]
Key = tuple[str, str]


def available_to_promise(on_hand: int, reserved: int, safety_stock: int) -> int:
    """Units that may still be promised: on hand, less what is reserved, less the safety stock."""
    return max(0, on_hand - reserved - safety_stock)


def count_reconciliation(counted: int, reserved: int) -> tuple[int, int]:
    """On hand after a stock count, and the units the count is short of what is already reserved.

    On hand never drops below reserved (the database forbids it); a shortfall is reported, not hidden."""
    return max(counted, reserved), max(0, reserved - counted)


@dataclass
class StockLevel:
    on_hand: int = 0
    reserved: int = 0


@dataclass
class Reservation:
    """Units of one SKU held for one shipment (one pick task). `short` counts units the warehouse could
    not find; they left on hand and are no longer part of the shipment."""

    shipment_id: UUID
    order_id: UUID
    warehouse_id: str
    sku: str
    quantity: int
    short: int = 0
    status: ReservationStatus = "open"

    @property
    def units(self) -> int:
        return self.quantity - self.short

    @property
    def key(self) -> tuple[UUID, str]:
        return self.shipment_id, self.sku


class Ledger:
    def __init__(
        self,
        warehouse_ids: Iterable[str],
        safety_stock: Callable[[str, str], int],
        stock: Mapping[Key, StockLevel] | None = None,
        reservations: Iterable[Reservation] = (),
    ) -> None:
        self.warehouse_ids = tuple(warehouse_ids)
        self.safety_stock = safety_stock
        self.stock: dict[Key, StockLevel] = dict(stock or {})
        self.reservations: dict[tuple[UUID, str], Reservation] = {}
        # The same reservations by order and by shipment: a batch of a few hundred orders looks up each order's
        # own, and a scan of all of them per order grew with the square of the batch.
        self._by_order: dict[UUID, dict[tuple[UUID, str], Reservation]] = {}
        self._by_shipment: dict[UUID, dict[tuple[UUID, str], Reservation]] = {}
        self.add_reservations(reservations)
        self.touched_stock: set[Key] = set()
        self.touched_reservations: set[tuple[UUID, str]] = set()
        # Of those, the ones held here (new rows; the others exist and change)
        self.new_reservations: set[tuple[UUID, str]] = set()

    # ---- loading ----

    def add_stock(self, levels: Mapping[Key, StockLevel]) -> None:
        for key, level in levels.items():
            self.stock.setdefault(key, level)

    def add_reservations(self, reservations: Iterable[Reservation]) -> None:
        for reservation in reservations:
            if reservation.key not in self.reservations:
                self._keep(reservation)

    def _keep(self, reservation: Reservation) -> None:
        replaced = self.reservations.get(reservation.key)
        if replaced is not None and replaced.order_id != reservation.order_id:
            del self._by_order[replaced.order_id][reservation.key]
        self.reservations[reservation.key] = reservation
        self._by_order.setdefault(reservation.order_id, {})[reservation.key] = reservation
        self._by_shipment.setdefault(reservation.shipment_id, {})[reservation.key] = reservation

    # ---- reading ----

    def level(self, warehouse_id: str, sku: str) -> StockLevel:
        return self.stock.setdefault((warehouse_id, sku), StockLevel())

    def available(self, warehouse_id: str, sku: str) -> int:
        level = self.stock.get((warehouse_id, sku), StockLevel())
        return available_to_promise(level.on_hand, level.reserved, self.safety_stock(warehouse_id, sku))

    def availability(self, skus: Iterable[str]) -> dict[Key, int]:
        return {(w, sku): self.available(w, sku) for w in self.warehouse_ids for sku in skus}

    def skus_in_stock(self, skus: Iterable[str]) -> set[str]:
        """The SKUs some warehouse can still promise: only waiting orders for these can be served now."""
        return {sku for sku in skus if any(self.available(w, sku) > 0 for w in self.warehouse_ids)}

    def open_reservations(self, order_id: UUID | None = None, shipment_id: UUID | None = None) -> list[Reservation]:
        if shipment_id is not None:
            held = self._by_shipment.get(shipment_id, {}).values()
        elif order_id is not None:
            held = self._by_order.get(order_id, {}).values()
        else:
            held = self.reservations.values()
        return [
            r
            for r in held
            if r.status == "open"
            and (order_id is None or r.order_id == order_id)
            and (shipment_id is None or r.shipment_id == shipment_id)
        ]

    # ---- changes ----

    def receive(self, warehouse_id: str, sku: str, quantity: int) -> None:
        self.level(warehouse_id, sku).on_hand += quantity
        self.touched_stock.add((warehouse_id, sku))

    def count(self, warehouse_id: str, sku: str, counted: int) -> tuple[int, bool]:
        """A stock count sets on hand, never below what is reserved. Returns the shortfall against what is
        reserved, and whether the count found more than was on hand."""
        level = self.level(warehouse_id, sku)
        on_hand, shortfall = count_reconciliation(counted, level.reserved)
        found_more = on_hand > level.on_hand
        level.on_hand = on_hand
        self.touched_stock.add((warehouse_id, sku))
        return shortfall, found_more

    def ship(self, shipment_id: UUID) -> int:
        """The shipment left the warehouse: its units leave on hand and reserved. Returns the units."""
        shipped = 0
        for r in self.open_reservations(shipment_id=shipment_id):
            level = self.level(r.warehouse_id, r.sku)
            level.on_hand -= r.units
            level.reserved -= r.units
            r.status = "shipped"
            shipped += r.units
            self.touched_stock.add((r.warehouse_id, r.sku))
            self.touched_reservations.add(r.key)
        return shipped

    def hold(self, order_id: UUID, shipment_id: UUID, warehouse_id: str, sku: str, quantity: int) -> None:
        level = self.level(warehouse_id, sku)
        if level.reserved + quantity > level.on_hand:
            raise AssertionError(f"reserving {quantity} of {sku} at {warehouse_id} would oversell")
        level.reserved += quantity
        reservation = Reservation(shipment_id, order_id, warehouse_id, sku, quantity)
        self._keep(reservation)
        self.touched_stock.add((warehouse_id, sku))
        self.touched_reservations.add(reservation.key)
        self.new_reservations.add(reservation.key)

    def release(self, reservation: Reservation) -> None:
        """The reservation's units stay on hand and may be promised again."""
        self._unreserve(reservation.warehouse_id, reservation.sku, reservation.units)
        reservation.status = "released"
        self.touched_reservations.add(reservation.key)

    def lose(self, reservation: Reservation, missing: int) -> int:
        """The warehouse could not find `missing` units of the reservation (a total, so a repeated report
        changes nothing): they leave on hand and reserved. Returns the units newly lost."""
        extra = min(max(reservation.short, missing), reservation.quantity) - reservation.short
        if extra <= 0:
            return 0
        reservation.short += extra
        if reservation.short == reservation.quantity:  # nothing of it is left to ship: it holds no stock
            reservation.status = "released"
        self._unreserve(reservation.warehouse_id, reservation.sku, extra)
        self.level(reservation.warehouse_id, reservation.sku).on_hand -= extra
        self.touched_reservations.add(reservation.key)
        return extra

    def _unreserve(self, warehouse_id: str, sku: str, quantity: int) -> None:
        self.level(warehouse_id, sku).reserved -= quantity
        self.touched_stock.add((warehouse_id, sku))
