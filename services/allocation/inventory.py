"""The allocation aggregate: stock per (warehouse, sku), the orders waiting for or holding it, and their
reservations, changed only through business operations (place, receive, count, cancel, short_pick, ship).

Pure and in memory. The service loads the part it has locked, applies one operation and saves what the
operation touched; the property-based tests drive the very same class over everything at once. Each
operation returns outcomes (what to announce); invariants hold after every one of them:
  0 <= reserved <= on_hand per (warehouse, sku), and reserved == the open reservations there;
  every ordered unit is cancelled, waiting (backordered), reserved in an open shipment, or shipped.

First come, first served: whenever stock may be promised (a receipt, a count that found more, a
cancellation, a new order, a re-route after a short pick), every order waiting for a SKU that can be
promised now is served in arrival order, the new or re-routed one taking its turn by its own arrival,
so an order that waits is never passed by a later one for the same SKU. Two deliberate exceptions:
a channel's cap on shipments per decision can leave stock the waiting order may not take, and an order
re-routed after a short pick does not go back to that warehouse in that decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from .routing import Candidate, Lines, Network, Route, available_to_promise, count_reconciliation, describe, route

OrderStatus = Literal["new", "allocated", "backordered", "cancelled", "unfulfillable"]
ReservationStatus = Literal["open", "shipped", "released"]
Key = tuple[str, str]


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

    @property
    def queue_position(self) -> tuple[datetime, UUID]:
        return self.arrived_at, self.order_id

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
class Allocated:
    order_id: UUID
    shipments: tuple[NewShipment, ...]
    backordered: dict[str, int]
    reason: str


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


Outcome = Allocated | Backordered | Unfulfillable | Cancelled | WithdrawalWanted | CountShort


class Inventory:
    def __init__(
        self,
        network: Network,
        stock: Mapping[Key, StockLevel] | None = None,
        orders: Iterable[Order] = (),
        reservations: Iterable[Reservation] = (),
        new_id: Callable[[], UUID] = uuid.uuid4,
    ) -> None:
        self.network = network
        self.stock: dict[Key, StockLevel] = dict(stock or {})
        self.orders: dict[UUID, Order] = {o.order_id: o for o in orders}
        self.reservations: dict[tuple[UUID, str], Reservation] = {r.key: r for r in reservations}
        self.new_id = new_id
        # What the operations changed, for the repository to save.
        self.touched_stock: set[Key] = set()
        self.touched_orders: set[UUID] = set()
        self.touched_reservations: set[tuple[UUID, str]] = set()

    # ---- loading (the service adds what it has locked) ----

    def add_stock(self, levels: Mapping[Key, StockLevel]) -> None:
        for key, level in levels.items():
            self.stock.setdefault(key, level)

    def add_orders(self, orders: Iterable[Order], reservations: Iterable[Reservation] = ()) -> None:
        for order in orders:
            self.orders.setdefault(order.order_id, order)
        for reservation in reservations:
            self.reservations.setdefault(reservation.key, reservation)

    # ---- reading ----

    def level(self, warehouse_id: str, sku: str) -> StockLevel:
        return self.stock.setdefault((warehouse_id, sku), StockLevel())

    def available(self, warehouse_id: str, sku: str) -> int:
        level = self.stock.get((warehouse_id, sku), StockLevel())
        return available_to_promise(level.on_hand, level.reserved, self.network.safety_stock(warehouse_id, sku))

    def skus_in_stock(self, skus: Iterable[str]) -> set[str]:
        """The SKUs some warehouse can still promise: only waiting orders for these can be served now."""
        return {sku for sku in skus if any(self.available(w, sku) > 0 for w in self.network.warehouse_ids)}

    def waiting_for(self, skus: Iterable[str]) -> list[Order]:
        wanted = set(skus)
        waiting = [o for o in self.orders.values() if o.status == "backordered" and wanted & o.backordered.keys()]
        return sorted(waiting, key=lambda o: o.queue_position)

    def open_reservations(self, order_id: UUID | None = None, shipment_id: UUID | None = None) -> list[Reservation]:
        return [
            r
            for r in self.reservations.values()
            if r.status == "open"
            and (order_id is None or r.order_id == order_id)
            and (shipment_id is None or r.shipment_id == shipment_id)
        ]

    # ---- operations ----

    def place(self, order: Order, cancelled_first: CancelRequest | None = None) -> list[Outcome]:
        """A validated order arrives: it joins the queue behind any earlier order waiting for its SKUs.

        `cancelled_first` is a cancellation that overtook the order (they travel on different topics)."""
        self.orders[order.order_id] = order
        self.touched_orders.add(order.order_id)
        order.backordered, order.status = dict(order.lines), "new"
        outcomes: list[Outcome] = []
        if cancelled_first is not None:
            wanted = cancelled_first.lines
            cancelled = {s: min(q, (wanted or order.lines).get(s, 0)) for s, q in order.lines.items()}
            order.cancelled = {s: q for s, q in cancelled.items() if q}
            order.backordered = {s: q - cancelled[s] for s, q in order.lines.items() if q > cancelled[s]}
            whole = not order.backordered
            outcomes.append(Cancelled(order.order_id, None if whole else order.cancelled, cancelled_first.reason))
            if whole:
                order.status, order.reason = "cancelled", cancelled_first.reason
                return outcomes
        return outcomes + self._serve(set(order.backordered), focus=order)

    def receive(self, warehouse_id: str, sku: str, quantity: int) -> list[Outcome]:
        self.level(warehouse_id, sku).on_hand += quantity
        self.touched_stock.add((warehouse_id, sku))
        return self._serve({sku})

    def count(self, warehouse_id: str, sku: str, counted: int) -> list[Outcome]:
        """A stock count sets on hand, never below what is reserved; a shortfall is reported."""
        level = self.level(warehouse_id, sku)
        on_hand, shortfall = count_reconciliation(counted, level.reserved)
        found_more = on_hand > level.on_hand
        level.on_hand = on_hand
        self.touched_stock.add((warehouse_id, sku))
        outcomes: list[Outcome] = []
        if shortfall:
            outcomes.append(CountShort(warehouse_id, sku, counted, level.reserved))
        if found_more:
            outcomes += self._serve({sku})
        return outcomes

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

    def cancel(self, order_id: UUID, lines: Lines | None, withdrawn: Iterable[UUID], reason: str) -> list[Outcome]:
        """Fulfillment withdrew these shipments: release them, cancel the requested units (all when
        `lines` is None) from what waits first and then from the withdrawn units, keep the rest of the
        withdrawn units reserved in their warehouse as new shipments, and serve the freed stock.

        Shipments fulfillment has not seen yet stay reserved: it withdraws them when they reach it, and
        reports that once more, by then for an order already cancelled here (see `_release_withdrawn`)."""
        order = self.orders[order_id]
        withdrawn_ids = set(withdrawn)
        released = [r for r in self.open_reservations(order_id=order_id) if r.shipment_id in withdrawn_ids]
        if order.status in ("cancelled", "unfulfillable"):
            return self._release_withdrawn(order, released)
        to_keep: dict[Key, int] = {}
        for r in released:
            self._unreserve(r.warehouse_id, r.sku, r.units)
            r.status = "released"
            self.touched_reservations.add(r.key)
            to_keep[(r.warehouse_id, r.sku)] = to_keep.get((r.warehouse_id, r.sku), 0) + r.units

        cancelled: dict[str, int] = {}
        freed: set[str] = set()
        for sku in sorted(order.lines):
            want = order.lines[sku] if lines is None else lines.get(sku, 0)
            from_waiting = min(want, order.backordered.get(sku, 0))
            _take(order.backordered, sku, from_waiting)
            from_withdrawn = 0
            for key in sorted(k for k in to_keep if k[1] == sku):
                share = min(want - from_waiting - from_withdrawn, to_keep[key])
                to_keep[key] -= share
                from_withdrawn += share
            if from_withdrawn:
                freed.add(sku)
            if from_waiting + from_withdrawn:
                cancelled[sku] = from_waiting + from_withdrawn
                order.cancelled[sku] = order.cancelled.get(sku, 0) + cancelled[sku]

        kept = self._rereserve(order, released, to_keep)
        refused = {sku: n - cancelled.get(sku, 0) for sku, n in (lines or {}).items() if n > cancelled.get(sku, 0)}
        wanted = self._still_to_withdraw(order_id, refused, withdrawn_ids, reason)
        for withdrawal in wanted:
            refused = {sku: n - withdrawal.lines.get(sku, 0) for sku, n in refused.items()}
        refused = {sku: n for sku, n in refused.items() if n > 0}
        whole = lines is None or all(order.cancelled.get(s, 0) >= q for s, q in order.lines.items())
        order.status = "cancelled" if whole else ("backordered" if order.backordered else "allocated")
        order.reason = reason
        self.touched_orders.add(order_id)
        note = f"; could not cancel {describe(refused)} (shipped or not withdrawn)" if refused else ""
        outcomes: list[Outcome] = []
        if whole or cancelled or refused:  # (units waiting for a withdrawal are announced once cancelled)
            outcomes.append(Cancelled(order_id, None if whole else cancelled, reason + note))
        outcomes += wanted
        if kept:
            outcomes.append(
                Allocated(order_id, tuple(kept), dict(order.backordered), "lines not cancelled stay reserved")
            )
        return outcomes + self._serve(freed)

    def _still_to_withdraw(
        self, order_id: UUID, units: Lines, withdrawn: set[UUID], reason: str
    ) -> list[WithdrawalWanted]:
        """Units of a partial cancellation fulfillment accepted that neither waited nor were in the shipments it
        withdrew, yet sit in an open shipment: one it had not seen when it decided (had it seen it, it would have
        withdrawn it, or refused the request had the shipment been packed). It is asked to withdraw them now."""
        left = dict(units)
        found: dict[UUID, WithdrawalWanted] = {}
        for r in sorted(self.open_reservations(order_id=order_id), key=lambda r: (str(r.shipment_id), r.sku)):
            take = min(left.get(r.sku, 0), r.units)
            if r.shipment_id in withdrawn or take <= 0:
                continue
            left[r.sku] -= take
            wanted = found.setdefault(
                r.shipment_id, WithdrawalWanted(order_id, r.shipment_id, r.warehouse_id, {}, reason)
            )
            wanted.lines[r.sku] = take
        return list(found.values())

    def _release_withdrawn(self, order: Order, released: list[Reservation]) -> list[Outcome]:
        """Shipments allocated while the whole order was being cancelled (the first allocation, a backorder
        release, a re-route) and withdrawn by fulfillment afterwards: nothing of them may ship, so their units
        are released and count as cancelled. The order was announced cancelled already."""
        for r in released:
            self._unreserve(r.warehouse_id, r.sku, r.units)
            r.status = "released"
            self.touched_reservations.add(r.key)
            order.cancelled[r.sku] = order.cancelled.get(r.sku, 0) + r.units
        if not released:
            return []
        self.touched_orders.add(order.order_id)
        return self._serve({r.sku for r in released})

    def short_pick(self, order_id: UUID, shipment_id: UUID, warehouse_id: str, missing: Lines) -> list[Outcome]:
        """The warehouse could not find `missing` units of the shipment (totals for the shipment, so a
        repeated report changes nothing): they leave on hand and reserved, and are routed again
        elsewhere, or wait for stock."""
        lost: dict[str, int] = {}
        for sku, quantity in missing.items():
            r = self.reservations.get((shipment_id, sku))
            if r is None or r.status != "open" or r.warehouse_id != warehouse_id or r.order_id != order_id:
                continue
            extra = min(max(r.short, quantity), r.quantity) - r.short
            if extra <= 0:
                continue
            r.short += extra
            if r.short == r.quantity:  # nothing of it is left to ship: it holds no stock and is closed
                r.status = "released"
            self._unreserve(warehouse_id, sku, extra)
            self.level(warehouse_id, sku).on_hand -= extra
            self.touched_reservations.add(r.key)
            lost[sku] = extra
        order = self.orders.get(order_id)
        if not lost or order is None:
            return []
        if order.status in ("cancelled", "unfulfillable"):
            for sku, n in lost.items():  # nothing to send any more: the lost units count as cancelled
                order.cancelled[sku] = order.cancelled.get(sku, 0) + n
            self.touched_orders.add(order_id)
            return []
        for sku, n in lost.items():
            order.backordered[sku] = order.backordered.get(sku, 0) + n
        context = f"short pick at {warehouse_id} ({describe(lost)}): "
        return self._serve(set(lost), focus=order, avoid=warehouse_id, context=context)

    # ---- the rules applied ----

    def _queue(self, skus: set[str]) -> list[Order]:
        """The waiting orders stock can be promised to now, in arrival order: those waiting for these SKUs,
        and, since each is routed for all it waits for, those waiting for their other SKUs in stock."""
        queue: dict[UUID, Order] = {}
        looked: set[str] = set()
        pending = set(skus)
        while pending:
            looked |= pending
            for order in self.waiting_for(self.skus_in_stock(pending)):
                queue.setdefault(order.order_id, order)
            pending = {sku for order in queue.values() for sku in order.backordered} - looked
        return sorted(queue.values(), key=lambda o: o.queue_position)

    def _serve(
        self, skus: set[str], focus: Order | None = None, avoid: str | None = None, context: str = ""
    ) -> list[Outcome]:
        """Route the queue in arrival order. The focus (a new order, or one re-routed after a short pick)
        takes its turn by its arrival like the others, and is always announced."""
        queue = self._queue(skus | set(focus.backordered if focus else ()))
        if focus is not None and focus not in queue:
            queue = sorted([*queue, focus], key=lambda o: o.queue_position)
        outcomes: list[Outcome] = []
        for order in queue:
            if order is focus:
                outcomes += self._route(order, announce=True, avoid=avoid, context=context)
            else:
                outcomes += self._route(order, announce=False, context="released from backorder: ")
        return outcomes

    def _route(self, order: Order, announce: bool, avoid: str | None = None, context: str = "") -> list[Outcome]:
        wanted = dict(order.backordered)
        candidates = [c for c in self._candidates(order) if c.warehouse_id != avoid]
        decision = route(wanted, self._availability(wanted), candidates, self.network.max_shipments(order.channel))
        if order.status == "new" and decision.missing and order.policy == "reject":
            order.status, order.backordered = "unfulfillable", {}
            order.reason = f"rejected, the order does not wait for stock: {describe(decision.missing)}"
            return [Unfulfillable(order.order_id, order.reason)]
        shipments = self._reserve(order, decision)
        if not announce and not shipments:
            return []
        order.backordered = dict(decision.missing)
        order.status = "backordered" if order.backordered else "allocated"
        order.reason = context + decision.reason
        self.touched_orders.add(order.order_id)
        if shipments:
            return [Allocated(order.order_id, shipments, dict(order.backordered), order.reason)]
        return [Backordered(order.order_id, dict(order.backordered), order.reason)]

    def _reserve(self, order: Order, decision: Route) -> tuple[NewShipment, ...]:
        shipments = []
        for warehouse_id, lines in decision.shipments:
            shipment = NewShipment(self.new_id(), warehouse_id, dict(lines))
            for sku, quantity in lines.items():
                self._hold(order.order_id, shipment.shipment_id, warehouse_id, sku, quantity)
            shipments.append(shipment)
        return tuple(shipments)

    def _rereserve(self, order: Order, released: list[Reservation], to_keep: dict[Key, int]) -> list[NewShipment]:
        """Withdrawn units that were not cancelled go back on hold, as one new shipment per withdrawn one."""
        kept = []
        for shipment_id in dict.fromkeys(r.shipment_id for r in released):
            parts = [r for r in released if r.shipment_id == shipment_id]
            lines: dict[str, int] = {}
            for r in parts:
                units = min(r.units, to_keep.get((r.warehouse_id, r.sku), 0))
                if units:
                    lines[r.sku] = units
                    to_keep[(r.warehouse_id, r.sku)] -= units
            if lines:
                shipment = NewShipment(self.new_id(), parts[0].warehouse_id, lines)
                for sku, quantity in lines.items():
                    self._hold(order.order_id, shipment.shipment_id, shipment.warehouse_id, sku, quantity)
                kept.append(shipment)
        return kept

    def _hold(self, order_id: UUID, shipment_id: UUID, warehouse_id: str, sku: str, quantity: int) -> None:
        level = self.level(warehouse_id, sku)
        if level.reserved + quantity > level.on_hand:
            raise AssertionError(f"reserving {quantity} of {sku} at {warehouse_id} would oversell")
        level.reserved += quantity
        reservation = Reservation(shipment_id, order_id, warehouse_id, sku, quantity)
        self.reservations[reservation.key] = reservation
        self.touched_stock.add((warehouse_id, sku))
        self.touched_reservations.add(reservation.key)

    def _unreserve(self, warehouse_id: str, sku: str, quantity: int) -> None:
        self.level(warehouse_id, sku).reserved -= quantity
        self.touched_stock.add((warehouse_id, sku))

    def _availability(self, wanted: Lines) -> dict[Key, int]:
        return {(w, sku): self.available(w, sku) for w in self.network.warehouse_ids for sku in wanted}

    def _candidates(self, order: Order) -> list[Candidate]:
        return self.network.candidates(str(order.ship_to.get("country", "")), order.ship_to.get("postal_code"))


def _take(lines: dict[str, int], sku: str, quantity: int) -> None:
    left = lines.get(sku, 0) - quantity
    if left > 0:
        lines[sku] = left
    else:
        lines.pop(sku, None)
