"""Allocation's handler: route validated orders (each assessed for its priority once, when first taken), apply
receipts, counts and restocked returns (releasing backorders by priority band, then in arrival order), release
stock on cancellation, re-route short picks, and take shipped units out of stock; then, once per batch, record the
demand it routed and suggest replenishment where the stock it changed fell below a reorder rule's minimum.

It takes a whole batch at once: it locks and loads the part of the inventory the batch may touch once
(services.allocation.repository), applies every record to the aggregate (services.allocation.inventory) in the
order read, then saves what changed and writes the outcomes to the outbox once, all in the transaction the
consumer opened for the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from shared.backbone.consumer import Routes
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.backorders import quantities
from shared.contracts.envelope import EnvelopeHead, wrap
from shared.reference import catalogue
from shared.reference.suppliers import Suppliers

from . import metrics, repository
from .changes import Change, Changed, apply_change
from .dropship import split
from .inventory import Inventory
from .orders import (
    Allocated,
    Backordered,
    Cancelled,
    CancelRequest,
    CountShort,
    Order,
    Outcome,
    Unfulfillable,
    WithdrawalWanted,
)
from .priority import Arrival, PriorityRules, assess
from .replenishment import Policy, Suggestion, review, suggestion_named
from .routing import Network

log = logging.getLogger(__name__)
# The events this handler takes, all in one call per batch so that they apply in the order read.
HANDLED = (
    ev.OrderValidated,
    ev.InventoryAdjusted,
    ev.ReturnReceived,
    ev.OrderShipped,
    ev.CancellationAccepted,
    ev.ShortPickReported,
    ev.DropshipDeclined,
    ev.OrderChangeAccepted,
)


@dataclass
class Named:
    """What a batch's records name, and so what it may touch: SKUs, orders, shipments."""

    skus: set[str] = field(default_factory=set)
    orders: set[UUID] = field(default_factory=set)
    shipments: set[UUID] = field(default_factory=set)

    @classmethod
    def by(cls, records: list[Inbound[Any]]) -> Named:
        named = cls()
        for record in records:
            match record.payload:
                case ev.OrderValidated(order_id=order_id, lines=lines):
                    named.orders.add(order_id)
                    named.skus |= {line.sku for line in lines}
                case ev.InventoryAdjusted(sku=sku):
                    named.skus.add(sku)
                case ev.ReturnReceived():
                    named.skus |= set(_restocked(record.payload))
                case ev.CancellationAccepted(order_id=order_id) | ev.ShortPickReported(order_id=order_id):
                    named.orders.add(order_id)
                case ev.DropshipDeclined(order_id=order_id, lines=lines):
                    named.orders.add(order_id)
                    named.skus |= {line.sku for line in lines}
                case ev.OrderShipped(pick_task_id=shipment_id):
                    named.shipments.add(shipment_id)
                case ev.OrderChangeAccepted(order_id=order_id, lines=lines):
                    named.orders.add(order_id)
                    named.skus |= {line.sku for line in lines}  # lines added: their stock is locked too
        return named


class AllocationHandlers:
    def __init__(
        self, network: Network, replenishment: Policy, priorities: PriorityRules, suppliers: Suppliers | None = None
    ) -> None:
        self.network = network
        self.replenishment = replenishment
        self.priorities = priorities
        self.suppliers = suppliers or Suppliers()

    async def on_allocation_input(self, conn: Conn, records: list[Inbound[Any]]) -> None:
        """A batch's records for allocation: locked and loaded once, applied in the order read, saved once."""
        named = Named.by(records)
        now = datetime.now(UTC)  # one instant per batch: waiting orders are ranked with their age at it
        inventory = Inventory(self.network, ranking=self.priorities.ranking, clock=lambda: now)
        await repository.load_batch(conn, inventory, named.skus, named.orders, named.shipments)
        early = await repository.take_early_cancellations(conn, named.orders - inventory.orders.keys())
        announced: list[tuple[Outcome | Changed, EnvelopeHead, str, Version]] = []
        for record in records:
            reference = _reference(record.payload)
            outcomes = await self._apply(conn, inventory, early, record.payload)
            # The order's version, ship-to and service level as they stood when the outcome was decided.
            announced += [(outcome, record.envelope, reference, _version(inventory, outcome)) for outcome in outcomes]
        await repository.save(conn, inventory)
        await repository.keep_early_cancellations(conn, early)
        await repository.record_demand(conn, inventory.demanded)
        suggested = await self._replenish(conn, inventory, records)
        metrics.count_outcomes([outcome for outcome, _, _, _ in announced if not isinstance(outcome, Changed)])
        events = [
            (_announcement(inventory, outcome, reference, version), cause)
            for outcome, cause, reference, version in announced
        ]
        await enqueue(
            conn,
            [
                (topics.ALLOCATION_EVENTS, key, wrap(payload, order_id=order_id, cause=cause))
                for (key, order_id, payload), cause in events
            ]
            + [(topics.REPLENISHMENT_SUGGESTIONS, f"{s.warehouse_id}:{s.sku}", wrap(_draft(s))) for s in suggested],
        )

    async def _replenish(self, conn: Conn, inventory: Inventory, records: list[Inbound[Any]]) -> list[Suggestion]:
        """Once per batch, after its records: close the suggestions its receipts name, then review the stock it
        changed against the reorder rules, so that a batch of orders raises one suggestion, not one per order."""
        received = [
            (named, p.warehouse_id, p.sku, p.reference)
            for p in (record.payload for record in records)
            if isinstance(p, ev.InventoryAdjusted) and p.kind == "receipt" and (named := suggestion_named(p.reference))
        ]
        closed = await repository.close_received_suggestions(conn, received)
        metrics.count_suggestions("received", [r["warehouse_id"] for r in closed])
        if unmatched := {r[0] for r in received} - {r["suggestion_id"] for r in closed}:
            log.info("receipts name suggestions not open for their warehouse and SKU: %s", sorted(map(str, unmatched)))
        watched = {
            key: rule for key in inventory.ledger.touched_stock if (rule := self.replenishment.rules.for_stock(*key))
        }
        if not watched:
            return []
        on_order = await repository.open_suggestions(conn, watched)
        today = datetime.now(UTC).date()
        levels = inventory.ledger.stock
        reviewed = [
            review(rule, key[1], levels[key].on_hand, levels[key].reserved, on_order.get(key, []), today)
            for key, rule in sorted(watched.items())
        ]
        suggestions = [s for s in reviewed if s is not None]
        recorded = await repository.open_new_suggestions(conn, suggestions)
        opened = [s for s in suggestions if s.suggestion_id in recorded]
        metrics.count_suggestions("opened", [s.warehouse_id for s in opened])
        return opened

    async def _apply(
        self, conn: Conn, inventory: Inventory, early: dict[UUID, CancelRequest], payload: Any
    ) -> Sequence[Outcome | Changed]:
        match payload:
            case ev.OrderChangeAccepted():
                if payload.order_id not in inventory.orders:
                    raise LookupError(
                        f"change {payload.change_id} for order {payload.order_id} allocation does not know"
                    )
                return apply_change(inventory, _change(payload))
            case ev.OrderValidated():
                if payload.order_id in inventory.orders:
                    return []  # announced before, and handled then
                return inventory.place(self._order(payload), early.pop(payload.order_id, None))
            case ev.InventoryAdjusted():
                return await self._adjust(conn, inventory, payload)
            case ev.ReturnReceived():
                # Returned units to restock are a receipt at the receiving warehouse (the other dispositions never
                # become sellable): they add to on hand and release backorders first come first served. The
                # receipt's reference names the return's receipt, so a replay is harmless.
                outcomes: list[Outcome] = []
                for sku, quantity in sorted(_restocked(payload).items()):
                    receipt = ev.InventoryAdjusted(
                        warehouse_id=payload.warehouse_id,
                        sku=sku,
                        kind="receipt",
                        quantity=quantity,
                        reference=_reference(payload),
                    )
                    outcomes += await self._adjust(conn, inventory, receipt)
                return outcomes
            case ev.OrderShipped(warehouse_id=supplier_id) if supplier_id in self.suppliers.by_id:
                return []  # a dropship supplier's parcel: none of our stock left with it
            case ev.OrderShipped(pick_task_id=shipment_id):
                if not inventory.ledger.open_reservations(shipment_id=shipment_id):
                    log.warning("shipment %s shipped with no open reservation", shipment_id)
                inventory.ship(shipment_id)
                return []
            case ev.ShortPickReported():
                if payload.order_id not in inventory.orders:
                    raise LookupError(f"short pick for order {payload.order_id} allocation does not know")
                missing = quantities(payload.missing)
                return inventory.short_pick(payload.order_id, payload.shipment_id, payload.warehouse_id, missing)
            case ev.DropshipDeclined():
                if payload.order_id not in inventory.orders:
                    raise LookupError(f"dropship lines declined for order {payload.order_id} allocation does not know")
                context = f"{payload.supplier_id} {payload.cause.replace('_', ' ')} ({payload.reason}): "
                return inventory.decline(payload.order_id, payload.supplier_id, quantities(payload.lines), context)
            case ev.CancellationAccepted():
                lines = None if payload.lines is None else quantities(payload.lines)
                if payload.order_id not in inventory.orders:
                    request = CancelRequest(lines, payload.reason)
                    earlier = early.get(payload.order_id)
                    early[payload.order_id] = request if earlier is None else earlier.and_then(request)
                    return []
                return inventory.cancel(payload.order_id, lines, payload.withdrawn_shipments, payload.reason)
        raise TypeError(f"allocation takes no {type(payload).__name__}")

    async def _adjust(self, conn: Conn, inventory: Inventory, adjustment: ev.InventoryAdjusted) -> list[Outcome]:
        where, sku = adjustment.warehouse_id, adjustment.sku
        if where not in self.network.warehouse_ids:
            raise ValueError(f"unknown warehouse {where}: stock there could never be promised")
        earlier = await repository.record_adjustment(conn, adjustment)
        if earlier == (adjustment.kind, adjustment.quantity):
            return []  # a replay of a line applied before
        if earlier is not None:
            raise AdjustmentConflict(adjustment, *earlier)
        before = inventory.ledger.level(where, sku).on_hand
        if adjustment.kind == "receipt":
            outcomes = inventory.receive(where, sku, adjustment.quantity)
        else:
            outcomes = inventory.count(where, sku, adjustment.quantity)
        shortfall = sum(o.reserved - o.counted for o in outcomes if isinstance(o, CountShort))
        if shortfall:
            log.warning("count %s at %s is %d units short of reserved stock", adjustment.reference, where, shortfall)
        on_hand_change = inventory.ledger.level(where, sku).on_hand - before
        await repository.record_effect(conn, adjustment, on_hand_change, shortfall)
        return outcomes

    def _order(self, validated: ev.OrderValidated) -> Order:
        """The order as allocation keeps it, with its priority assessed from how it arrived: the cut-off and
        promise are those of the warehouse nearest its destination."""
        ship_to = validated.ship_to
        nearest = self.network.candidates(ship_to.country, ship_to.postal_code)[0].warehouse_id
        warehouse = next(w for w in self.network.warehouses if w.id == nearest)
        arrival = Arrival(
            validated.service_level,
            validated.channel,
            validated.customer.email,
            validated.received_at,
            warehouse.id,
            warehouse.cutoff,
            validated.customer.account,
        )
        return Order(
            order_id=validated.order_id,
            arrived_at=validated.received_at,
            channel=validated.channel,
            policy=validated.backorder_policy,
            ship_to=ship_to.model_dump(mode="json"),
            service_level=validated.service_level,
            lines=quantities(validated.lines),
            priority=assess(arrival, self.priorities),
            dropship=split(quantities(validated.lines), self.suppliers).dropship,
        )

    def routes(self) -> Routes:
        return {
            **{event: self.on_allocation_input for event in HANDLED},
            ev.ProductUpserted: catalogue.on_product_upserted,
        }


class AdjustmentConflict(ValueError):
    """A line under the reference of one applied before, for the same SKU, that says something else: which
    one is right is for the warehouse to say, so it goes to the dead-letter topic, its reason with it."""

    def __init__(self, adjustment: ev.InventoryAdjusted, kind: str, quantity: int) -> None:
        where = f"{adjustment.reference} for {adjustment.sku} at {adjustment.warehouse_id}"
        super().__init__(
            f"{where} was applied as a {kind} of {quantity}; this one is a {adjustment.kind} of {adjustment.quantity}"
        )


def _restocked(received: ev.ReturnReceived) -> dict[str, int]:
    """Units a return parcel puts back on the shelf, per SKU."""
    restocked: dict[str, int] = {}
    for line in received.lines:
        if line.disposition == "restock":
            restocked[line.sku] = restocked.get(line.sku, 0) + line.quantity
    return restocked


def _reference(payload: Any) -> str:
    """The warehouse's reference a stock change is announced under."""
    match payload:
        case ev.InventoryAdjusted(reference=reference):
            return reference
        case ev.ReturnReceived(rma=rma, receipt=receipt):
            return f"return:{rma}:{receipt}"
    return ""


def _items(lines: dict[str, int]) -> list[ev.ItemQuantity]:
    return [ev.ItemQuantity(sku=sku, quantity=quantity) for sku, quantity in sorted(lines.items()) if quantity]


def _draft(suggestion: Suggestion) -> ev.ReplenishmentSuggested:
    rule = suggestion.rule
    return ev.ReplenishmentSuggested(
        suggestion_id=suggestion.suggestion_id,
        warehouse_id=suggestion.warehouse_id,
        sku=suggestion.sku,
        supplier=rule.supplier,
        quantity=suggestion.quantity,
        forecast=suggestion.forecast,
        on_hand=suggestion.on_hand,
        reserved=suggestion.reserved,
        on_order=suggestion.on_order,
        minimum=rule.minimum,
        maximum=rule.maximum,
        pack_multiple=rule.pack_multiple,
        lead_time_days=rule.lead_time_days,
        expected_by=suggestion.expected_by,
        reason=suggestion.reason,
    )


@dataclass(frozen=True)
class Version:
    """An order's version, ship-to and service level when an outcome about it was decided."""

    number: int
    ship_to: Any
    service_level: str


def _version(inventory: Inventory, outcome: Outcome | Changed) -> Version:
    order = inventory.orders.get(getattr(outcome, "order_id", None))  # type: ignore[arg-type]
    if order is None:
        return Version(0, None, "standard")
    return Version(order.version, dict(order.ship_to), order.service_level)


def _change(accepted: ev.OrderChangeAccepted) -> Change:
    return Change(
        accepted.order_id,
        accepted.change_id,
        accepted.order_version,
        accepted.ship_to.model_dump(mode="json"),
        accepted.service_level,
        quantities(accepted.lines),
        frozenset(accepted.withdrawn_shipments),
        accepted.reason,
    )


def _announcement(
    inventory: Inventory, outcome: Outcome | Changed, reference: str, version: Version
) -> tuple[str, UUID | None, ev.Contract]:
    """The contract event for an outcome, with its key and order id, carrying the order's version at the time."""
    match outcome:
        case Changed():
            payload: ev.Contract = ev.OrderChanged(
                order_id=outcome.order_id,
                change_id=outcome.change_id,
                order_version=outcome.version,
                ship_to=ev.Address.model_validate(version.ship_to),
                service_level=cast(ev.ServiceLevel, version.service_level),
                lines=_items(outcome.lines),
                backordered=_items(outcome.backordered),
                refused=_items(outcome.refused),
                reason=outcome.reason,
            )
        case Allocated():
            order = inventory.orders[outcome.order_id]
            shipments = [
                ev.Shipment(shipment_id=s.shipment_id, warehouse_id=s.warehouse_id, lines=_items(s.lines))
                for s in outcome.shipments
            ]
            payload = ev.OrderAllocated(
                order_id=outcome.order_id,
                shipments=shipments,
                ship_to=ev.Address.model_validate(version.ship_to),
                service_level=cast(ev.ServiceLevel, version.service_level),
                backordered=_items(outcome.backordered),
                reason=outcome.reason,
                priority=inventory.serving.score(order),
                dropship=[
                    ev.PurchaseOrderPart(
                        purchase_order_id=p.purchase_order_id, supplier_id=p.supplier_id, lines=_items(p.lines)
                    )
                    for p in outcome.purchase_orders
                ],
                order_version=version.number,
            )
        case Backordered():
            payload = ev.OrderBackordered(
                order_id=outcome.order_id,
                reason=outcome.reason,
                missing=_items(outcome.missing),
                order_version=version.number,
            )
        case Unfulfillable():
            payload = ev.OrderUnfulfillable(order_id=outcome.order_id, reason=outcome.reason)
        case Cancelled():
            lines = None if outcome.lines is None else _items(outcome.lines)
            payload = ev.OrderCancelled(order_id=outcome.order_id, lines=lines, reason=outcome.reason)
        case WithdrawalWanted():
            payload = ev.WithdrawalRequested(
                order_id=outcome.order_id,
                shipment_id=outcome.shipment_id,
                warehouse_id=outcome.warehouse_id,
                lines=_items(outcome.lines),
                reason=outcome.reason,
            )
        case CountShort():
            short = ev.StockCountShort(
                warehouse_id=outcome.warehouse_id,
                sku=outcome.sku,
                counted=outcome.counted,
                reserved=outcome.reserved,
                reference=reference,
            )
            return f"{outcome.warehouse_id}:{outcome.sku}", None, short
    return str(outcome.order_id), outcome.order_id, payload
