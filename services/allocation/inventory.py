"""The allocation aggregate: the stock ledger (services.allocation.ledger), the orders waiting for or holding
stock, and the serving policy over them (services.allocation.serving), changed only through business operations
(place, receive, count, cancel, short_pick, ship).

Pure and in memory. The service loads the part a batch has locked, applies the batch's operations in the order
read and saves what they touched; the property-based tests drive the very same class over everything at once.
Each operation returns outcomes (what to announce); invariants hold after every one of them: the ledger's, and
every ordered unit is cancelled, waiting (backordered), reserved in an open shipment, or shipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from uuid import UUID

from shared.contracts.ids import time_ordered_id

from . import dropship
from .ledger import Key, Ledger, Reservation
from .orders import Allocated, Cancelled, CancelRequest, CountShort, Order, Outcome, WithdrawalWanted
from .priority import FIRST_COME_FIRST_SERVED, Ranking
from .routing import Lines, Network, describe
from .serving import Serving


class Inventory:
    def __init__(
        self,
        network: Network,
        new_id: Callable[[], UUID] = time_ordered_id,
        ranking: Ranking = FIRST_COME_FIRST_SERVED,
        clock: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.network = network
        self.ledger = Ledger(network.warehouse_ids, network.safety_stock)
        self.orders: dict[UUID, Order] = {}
        # Orders the operations changed, for the repository to save (the ledger keeps its own).
        self.touched_orders: set[UUID] = set()
        # Units reserved by routing decisions per (warehouse, sku): the demand the history records.
        self.demanded: dict[Key, int] = {}
        # The ranking of waiting orders at the clock's instant (a batch reads it once; no clock: no age points).
        self.serving = Serving(
            network, self.ledger, self.orders, self.touched_orders, self.demanded, new_id, ranking, clock
        )

    def add_orders(self, orders: Iterable[Order]) -> None:
        for order in orders:
            self.orders.setdefault(order.order_id, order)

    # ---- operations ----

    def place(self, order: Order, cancelled_first: CancelRequest | None = None) -> list[Outcome]:
        """A validated order arrives: it joins the queue behind any order waiting for its SKUs that is ahead of
        it (a higher priority band, or the same band and arrived earlier).

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
                order.status, order.reason, order.dropship = "cancelled", cancelled_first.reason, {}
                return outcomes
        if order.dropship:
            return outcomes + dropship.place(self.serving, order)
        return outcomes + self.serving.serve(set(order.backordered), focus=order)

    def decline(self, order_id: UUID, supplier_id: str, lines: Lines, context: str) -> list[Outcome]:
        """A supplier will not ship these units: routed to a warehouse that has them, or backordered."""
        return dropship.decline(self.serving, self.orders[order_id], supplier_id, lines, context)

    def receive(self, warehouse_id: str, sku: str, quantity: int) -> list[Outcome]:
        self.ledger.receive(warehouse_id, sku, quantity)
        return self.serving.serve({sku})

    def count(self, warehouse_id: str, sku: str, counted: int) -> list[Outcome]:
        """A stock count sets on hand, never below what is reserved; a shortfall is reported."""
        shortfall, found_more = self.ledger.count(warehouse_id, sku, counted)
        outcomes: list[Outcome] = []
        if shortfall:
            outcomes.append(CountShort(warehouse_id, sku, counted, self.ledger.level(warehouse_id, sku).reserved))
        if found_more:
            outcomes += self.serving.serve({sku})
        return outcomes

    def ship(self, shipment_id: UUID) -> int:
        """The shipment left the warehouse: its units leave on hand and reserved. Returns the units."""
        return self.ledger.ship(shipment_id)

    def cancel(self, order_id: UUID, lines: Lines | None, withdrawn: Iterable[UUID], reason: str) -> list[Outcome]:
        """Fulfillment withdrew these shipments: release them, cancel the requested units (all when
        `lines` is None) from what waits first and then from the withdrawn units, keep the rest of the
        withdrawn units reserved in their warehouse as new shipments, and serve the freed stock.

        Shipments fulfillment has not seen yet stay reserved: it withdraws them when they reach it, and
        reports that once more, by then for an order already cancelled here (see `_release_withdrawn`)."""
        order = self.orders[order_id]
        withdrawn_ids = set(withdrawn)
        released = [r for r in self.ledger.open_reservations(order_id=order_id) if r.shipment_id in withdrawn_ids]
        if order.status in ("cancelled", "unfulfillable"):
            return self._release_withdrawn(order, released)
        from_suppliers = dropship.withdrawn(order, lines)
        for sku, n in from_suppliers.items():
            order.backordered[sku] = order.backordered.get(sku, 0) + n
        to_keep: dict[Key, int] = {}
        for r in released:
            self.ledger.release(r)
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

        kept = self.serving.keep(order, released, to_keep)
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
        return outcomes + self.serving.serve(freed | set(from_suppliers))

    def _still_to_withdraw(
        self, order_id: UUID, units: Lines, withdrawn: set[UUID], reason: str
    ) -> list[WithdrawalWanted]:
        """Units of a partial cancellation fulfillment accepted that neither waited nor were in the shipments it
        withdrew, yet sit in an open shipment: one it had not seen when it decided (had it seen it, it would have
        withdrawn it, or refused the request had the shipment been packed). It is asked to withdraw them now."""
        left = dict(units)
        found: dict[UUID, WithdrawalWanted] = {}
        for r in sorted(self.ledger.open_reservations(order_id=order_id), key=lambda r: (str(r.shipment_id), r.sku)):
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
            self.ledger.release(r)
            order.cancelled[r.sku] = order.cancelled.get(r.sku, 0) + r.units
        if not released:
            return []
        self.touched_orders.add(order.order_id)
        return self.serving.serve({r.sku for r in released})

    def short_pick(self, order_id: UUID, shipment_id: UUID, warehouse_id: str, missing: Lines) -> list[Outcome]:
        """The warehouse could not find `missing` units of the shipment (totals for the shipment, so a
        repeated report changes nothing): they leave on hand and reserved, and are routed again
        elsewhere, or wait for stock."""
        lost: dict[str, int] = {}
        for sku, quantity in missing.items():
            r = self.ledger.reservations.get((shipment_id, sku))
            if r is None or r.status != "open" or r.warehouse_id != warehouse_id or r.order_id != order_id:
                continue
            if extra := self.ledger.lose(r, quantity):
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
        return self.serving.serve(set(lost), focus=order, avoid=warehouse_id, context=context)


def _take(lines: dict[str, int], sku: str, quantity: int) -> None:
    left = lines.get(sku, 0) - quantity
    if left > 0:
        lines[sku] = left
    else:
        lines.pop(sku, None)
