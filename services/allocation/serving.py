"""The serving policy: by priority band, then first come, first served.

Whenever stock may be promised (a receipt, a count that found more, a cancellation, a new order, a re-route
after a short pick), every order waiting for a SKU that can be promised now is served by its turn: the highest
priority band first (services.allocation.priority: the score at this instant, age included), then in arrival
order; the new or re-routed one takes its turn like the others. So an order that waits is never passed by a
later one of the same or a lower band for the same SKU. Two deliberate exceptions: a channel's cap on shipments
per decision can leave stock the waiting order may not take, and an order re-routed after a short pick does not
go back to that warehouse in that decision. Pure and in memory, over the ledger and the orders the aggregate holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from uuid import UUID

from .ledger import Key, Ledger, Reservation
from .orders import Allocated, Backordered, NewShipment, Order, Outcome, Unfulfillable
from .priority import Ranking, Turn, summary
from .routing import Candidate, Network, Route, describe, route


class Serving:
    def __init__(
        self,
        network: Network,
        ledger: Ledger,
        orders: dict[UUID, Order],
        touched_orders: set[UUID],
        demanded: dict[Key, int],
        new_id: Callable[[], UUID],
        ranking: Ranking,
        clock: Callable[[], datetime | None],
    ) -> None:
        self.network = network
        self.ledger = ledger
        self.orders = orders
        self.touched_orders = touched_orders
        self.demanded = demanded
        self.new_id = new_id
        self.ranking = ranking
        self.clock = clock

    def turn(self, order: Order) -> Turn:
        return self.ranking.turn(order.priority, order.arrived_at, order.order_id, self.clock())

    def score(self, order: Order) -> int:
        """The order's priority score now, age included: what its pick tasks carry."""
        return self.ranking.score(order.priority, order.arrived_at, self.clock())

    def waiting_for(self, skus: Iterable[str]) -> list[Order]:
        wanted = set(skus)
        waiting = [o for o in self.orders.values() if o.status == "backordered" and wanted & o.backordered.keys()]
        return sorted(waiting, key=self.turn)

    def queue(self, skus: set[str]) -> list[Order]:
        """The waiting orders stock can be promised to now, in turn: those waiting for these SKUs,
        and, since each is routed for all it waits for, those waiting for their other SKUs in stock."""
        queue: dict[UUID, Order] = {}
        looked: set[str] = set()
        pending = set(skus)
        while pending:
            looked |= pending
            for order in self.waiting_for(self.ledger.skus_in_stock(pending)):
                queue.setdefault(order.order_id, order)
            pending = {sku for order in queue.values() for sku in order.backordered} - looked
        return sorted(queue.values(), key=self.turn)

    def serve(
        self, skus: set[str], focus: Order | None = None, avoid: str | None = None, context: str = ""
    ) -> list[Outcome]:
        """Route the queue in turn. The focus (a new order, or one re-routed after a short pick) takes its turn
        like the others, and is always announced."""
        queue = self.queue(skus | set(focus.backordered if focus else ()))
        if focus is not None and focus not in queue:
            queue = sorted([*queue, focus], key=self.turn)
        outcomes: list[Outcome] = []
        for order in queue:
            if order is focus:
                outcomes += self._route(order, announce=True, avoid=avoid, context=context)
            else:
                outcomes += self._route(order, announce=False, context="released from backorder: ", served=True)
        return outcomes

    def keep(self, order: Order, released: list[Reservation], to_keep: dict[Key, int]) -> list[NewShipment]:
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
                kept.append(self._hold(order, parts[0].warehouse_id, lines))
        return kept

    def _route(
        self, order: Order, announce: bool, avoid: str | None = None, context: str = "", served: bool = False
    ) -> list[Outcome]:
        wanted = dict(order.backordered)
        candidates = [c for c in self._candidates(order) if c.warehouse_id != avoid]
        decision = route(
            wanted, self.ledger.availability(wanted), candidates, self.network.max_shipments(order.channel)
        )
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
        if served:  # a release from backorder says which turn it took
            order.reason += f"; {summary(order.priority, order.arrived_at, self.clock(), self.ranking)}"
        self.touched_orders.add(order.order_id)
        if shipments:
            return [Allocated(order.order_id, shipments, dict(order.backordered), order.reason)]
        return [Backordered(order.order_id, dict(order.backordered), order.reason)]

    def _reserve(self, order: Order, decision: Route) -> tuple[NewShipment, ...]:
        """Hold what the decision routes, counted as demand at each warehouse (units kept after a partial
        cancellation are held again in `keep`, but were counted when first routed)."""
        for warehouse_id, lines in decision.shipments:
            for sku, quantity in lines.items():
                self.demanded[(warehouse_id, sku)] = self.demanded.get((warehouse_id, sku), 0) + quantity
        return tuple(self._hold(order, warehouse_id, dict(lines)) for warehouse_id, lines in decision.shipments)

    def _hold(self, order: Order, warehouse_id: str, lines: dict[str, int]) -> NewShipment:
        shipment = NewShipment(self.new_id(), warehouse_id, lines)
        for sku, quantity in lines.items():
            self.ledger.hold(order.order_id, shipment.shipment_id, warehouse_id, sku, quantity)
        return shipment

    def _candidates(self, order: Order) -> list[Candidate]:
        return self.network.candidates(str(order.ship_to.get("country", "")), order.ship_to.get("postal_code"))
