"""Property-based model of allocation: random receipts, counts, orders, cancellations, short picks and
shipments driven against the aggregate the service runs (hypothesis stateful testing), with the
invariants checked after every step:
- never oversold, never negative: 0 <= reserved <= on hand everywhere;
- reserved equals the open reservations, per (warehouse, sku);
- on hand equals receipts and count corrections minus shipped and short-picked units (an independent ledger);
- every unit of every order is accounted for: cancelled, waiting, reserved in an open shipment, or shipped;
- a cancelled order holds no open reservation once fulfillment has answered for all its shipments;
- priority, then first come first served: no order gets new units of a SKU while an order ahead of it (a
  higher priority band at that instant, age points included, or the same band and arrived earlier; whose
  channel may use every warehouse, and which did not just decline that warehouse after a short pick there)
  still waits for that SKU. Orders come with random service levels and tiers, and age as the clock runs, so
  bands cross: a later express order overtakes, an old standard one climbs back ahead.

Allocation and fulfillment talk over topics, so they learn of each other's decisions late and in any order
across orders (in order per order: both topics are keyed by order id). The model keeps the two topics as
queues and a small fulfillment beside the aggregate (its pick tasks, decided with the fulfillment domain's
own cancellation rule), and delivers one event at a time in whichever order hypothesis picks: a cancellation
fulfillment accepts before it has seen a shipment allocation made (the first allocation, a backorder release,
a re-route after a short pick, what a partial cancellation kept) withdraws that shipment only when it arrives.
"""

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.allocation.inventory import Inventory
from services.allocation.orders import Allocated, CancelRequest, Order, Outcome
from services.allocation.priority import Component, Priority, Ranking
from services.allocation.routing import Network
from services.fulfillment import domain as fulfillment
from shared.contracts.events import ItemQuantity
from shared.reference.warehouses import DEFAULT_FILE, load_warehouses

WAREHOUSES = load_warehouses(DEFAULT_FILE)
WAREHOUSE_IDS = [w.id for w in WAREHOUSES]
SKUS = ["A", "B", "C"]
CHANNELS = {"webshop": 3, "pos": 1, "marketplace": 2}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Ten points a minute, so that an order waiting a few steps climbs a band of 100 (the service's own rate is slower).
RANKING = Ranking(band_width=100, age_points_per_hour=600, age_max_points=250)
SERVICE_LEVELS = {"standard": 0, "express": 300, "overnight": 400}

warehouses = st.sampled_from(WAREHOUSE_IDS)
skus = st.sampled_from(SKUS)
NOT_PICKED_YET = frozenset({"released"})


# ---- what travels between allocation and fulfillment ----


@dataclass(frozen=True)
class CancellationAccepted:
    lines: dict[str, int] | None
    withdrawn: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class ShortPicked:
    shipment_id: uuid.UUID
    warehouse_id: str
    missing: dict[str, int]


@dataclass(frozen=True)
class Shipped:
    shipment_id: uuid.UUID


FulfillmentEvent = CancellationAccepted | ShortPicked | Shipped


@dataclass
class PickTask:
    order_id: uuid.UUID
    warehouse_id: str
    lines: dict[str, int]
    status: str = "released"

    def state(self, shipment_id: uuid.UUID) -> fulfillment.TaskState:
        items = tuple(ItemQuantity(sku=sku, quantity=q) for sku, q in sorted(self.lines.items()))
        return fulfillment.TaskState(shipment_id, self.warehouse_id, self.status, items)


@dataclass
class Topics:
    """Per order, what allocation announced that fulfillment has not read yet, and the other way round."""

    to_fulfillment: dict[uuid.UUID, list[Allocated]] = field(default_factory=dict)
    to_allocation: dict[uuid.UUID, list[FulfillmentEvent]] = field(default_factory=dict)

    def busy(self, order_id: uuid.UUID) -> bool:
        return bool(self.to_fulfillment.get(order_id) or self.to_allocation.get(order_id))


class AllocationModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ids = 0
        self.inventory = Inventory(Network(WAREHOUSES))
        self.ledger: dict[tuple[str, str], int] = {}
        self.shipped: dict[uuid.UUID, dict[str, int]] = {}
        self.clock = 0
        self.topics = Topics()
        self.tasks: dict[uuid.UUID, PickTask] = {}
        self.whole_cancelled: set[uuid.UUID] = set()  # fulfillment accepted a cancellation of the whole order

    @initialize(
        safety=st.dictionaries(warehouses, st.integers(0, 2)),
        sku_safety=st.dictionaries(skus, st.integers(0, 2), max_size=1),
    )
    def configure(self, safety: dict[str, int], sku_safety: dict[str, int]) -> None:
        network = Network(
            WAREHOUSES,
            sku_safety_stock=sku_safety,
            warehouse_sku_safety_stock={(w, "B"): n for w, n in safety.items()},
            channel_max_shipments=CHANNELS,
        )
        self.inventory = Inventory(network, new_id=self.next_id, ranking=RANKING, clock=self.now)

    def now(self) -> datetime:
        return T0 + timedelta(minutes=self.clock)

    def next_id(self) -> uuid.UUID:
        # Ids in creation order keep the generated steps reproducible.
        self.ids += 1
        return uuid.UUID(int=self.ids)

    # ---- allocation's operations ----

    @rule(warehouse=warehouses, sku=skus, quantity=st.integers(1, 8), later_by=st.integers(0, 15))
    def receive(self, warehouse: str, sku: str, quantity: int, later_by: int) -> None:
        self.clock += later_by  # while the waiting orders age
        self.ledger[(warehouse, sku)] = self.ledger.get((warehouse, sku), 0) + quantity
        self.announce(self.inventory.receive(warehouse, sku, quantity))

    @rule(warehouse=warehouses, sku=skus, counted=st.integers(0, 12))
    def count(self, warehouse: str, sku: str, counted: int) -> None:
        reserved = self.inventory.ledger.level(warehouse, sku).reserved
        self.ledger[(warehouse, sku)] = max(counted, reserved)
        self.announce(self.inventory.count(warehouse, sku, counted))

    @rule(
        lines=st.dictionaries(skus, st.integers(1, 6), min_size=1),
        channel=st.sampled_from(sorted(CHANNELS)),
        policy=st.sampled_from(["backorder", "backorder", "reject"]),
        country=st.sampled_from(["NL", "DE", "FR", "ES", "US"]),
        arrived_earlier_by=st.integers(0, 3),
        overtaken_by=st.sampled_from([None, None, None, "whole", "some"]),
        service_level=st.sampled_from(["standard", "standard", "express", "overnight"]),
        tier=st.sampled_from([0, 0, 0, 150]),
    )
    def place(
        self,
        lines: dict[str, int],
        channel: str,
        policy: str,
        country: str,
        arrived_earlier_by: int,
        overtaken_by: str | None,
        service_level: str,
        tier: int,
    ) -> None:
        # Orders may reach allocation in a different order from the one they arrived in, and after fulfillment
        # accepted their cancellation (with nothing to withdraw: it has seen no shipment of theirs).
        self.clock += 1
        order = Order(
            order_id=self.next_id(),
            arrived_at=T0 + timedelta(minutes=self.clock - arrived_earlier_by),
            channel=channel,
            policy=policy,  # type: ignore[arg-type]
            ship_to={"country": country},
            service_level=service_level,
            lines=lines,
            priority=Priority(
                (
                    Component("service_level", SERVICE_LEVELS[service_level], service_level),
                    Component("tier", tier, "vip"),
                )
            ),
        )
        early = None
        if overtaken_by is not None:
            early = CancelRequest(None if overtaken_by == "whole" else {min(lines): 1}, "changed my mind")
            if early.lines is None:
                self.whole_cancelled.add(order.order_id)
        self.announce(self.inventory.place(order, early))

    def announce(self, outcomes: list[Outcome], declined: tuple[uuid.UUID, str] | None = None) -> None:
        self.check_priority_then_first_come_first_served(outcomes, declined)
        for outcome in outcomes:
            if isinstance(outcome, Allocated) and outcome.shipments:
                self.topics.to_fulfillment.setdefault(outcome.order_id, []).append(outcome)

    def waiting_for_allocation(self) -> list[uuid.UUID]:
        return sorted(order_id for order_id, events in self.topics.to_allocation.items() if events)

    @precondition(lambda self: self.waiting_for_allocation())
    @rule(data=st.data())
    def allocation_reads_a_fulfillment_event(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self.waiting_for_allocation()))
        event = self.topics.to_allocation[order_id].pop(0)
        match event:
            case CancellationAccepted(lines=lines, withdrawn=withdrawn):
                self.announce(self.inventory.cancel(order_id, lines, withdrawn, "customer request"))
            case ShortPicked(shipment_id=shipment_id, warehouse_id=warehouse, missing=missing):
                short_before = {
                    r.key: r.short for r in self.inventory.ledger.open_reservations(shipment_id=shipment_id)
                }
                outcomes = self.inventory.short_pick(order_id, shipment_id, warehouse, missing)
                for key, short in short_before.items():
                    r = self.inventory.ledger.reservations[key]
                    self.ledger[(r.warehouse_id, r.sku)] -= r.short - short
                # the short-picked order declines that warehouse for this one decision; its units go to the next in line
                self.announce(outcomes, declined=(order_id, warehouse))
            case Shipped(shipment_id=shipment_id):
                for r in self.inventory.ledger.open_reservations(shipment_id=shipment_id):
                    self.ledger[(r.warehouse_id, r.sku)] -= r.units
                    shipped = self.shipped.setdefault(r.order_id, {})
                    shipped[r.sku] = shipped.get(r.sku, 0) + r.units
                self.inventory.ship(shipment_id)

    # ---- fulfillment, as the service decides ----

    def waiting_for_fulfillment(self) -> list[uuid.UUID]:
        return sorted(order_id for order_id, events in self.topics.to_fulfillment.items() if events)

    @precondition(lambda self: self.waiting_for_fulfillment())
    @rule(data=st.data())
    def fulfillment_reads_an_allocation(self, data: st.DataObject) -> None:
        """A pick task per shipment; one allocated after the whole order was cancelled is born withdrawn."""
        order_id = data.draw(st.sampled_from(self.waiting_for_fulfillment()))
        allocated = self.topics.to_fulfillment[order_id].pop(0)
        cancelled = order_id in self.whole_cancelled
        for shipment in allocated.shipments:
            status = "cancelled" if cancelled else "released"
            self.tasks[shipment.shipment_id] = PickTask(order_id, shipment.warehouse_id, dict(shipment.lines), status)
        if cancelled:
            withdrawn = tuple(s.shipment_id for s in allocated.shipments)
            self.to_allocation(order_id, CancellationAccepted(None, withdrawn))

    def to_allocation(self, order_id: uuid.UUID, event: FulfillmentEvent) -> None:
        self.topics.to_allocation.setdefault(order_id, []).append(event)

    def cancellable(self) -> list[uuid.UUID]:
        return sorted(o.order_id for o in self.inventory.orders.values() if o.status != "unfulfillable")

    @precondition(lambda self: self.cancellable())
    @rule(data=st.data(), whole=st.booleans())
    def customer_cancels(self, data: st.DataObject, whole: bool) -> None:
        """Fulfillment decides with the pick tasks it has now; what allocation announced since is unknown to it."""
        order_id = data.draw(st.sampled_from(self.cancellable()))
        ordered = self.inventory.orders[order_id].lines
        some = st.dictionaries(st.sampled_from(sorted(ordered)), st.integers(1, 6), min_size=1)
        lines = None if whole else data.draw(some)
        tasks = [t.state(shipment_id) for shipment_id, t in self.tasks.items() if t.order_id == order_id]
        items = None if lines is None else [ItemQuantity(sku=sku, quantity=q) for sku, q in sorted(lines.items())]
        decision = fulfillment.decide_cancellation(tasks, items)
        if isinstance(decision, fulfillment.Refuse):
            return
        for task in decision.tasks:
            self.tasks[task.pick_task_id].status = "cancelled"
        if lines is None:
            self.whole_cancelled.add(order_id)
        withdrawn = tuple(t.pick_task_id for t in decision.tasks)
        self.to_allocation(order_id, CancellationAccepted(lines, withdrawn))

    def tasks_in(self, statuses: frozenset[str]) -> list[uuid.UUID]:
        return sorted(shipment_id for shipment_id, t in self.tasks.items() if t.status in statuses)

    @precondition(lambda self: self.tasks_in(NOT_PICKED_YET))
    @rule(data=st.data())
    def warehouse_short_picks(self, data: st.DataObject) -> None:
        shipment_id = data.draw(st.sampled_from(self.tasks_in(NOT_PICKED_YET)))
        task = self.tasks[shipment_id]
        found = data.draw(st.fixed_dictionaries({sku: st.integers(0, q) for sku, q in task.lines.items()}))
        missing = {sku: q - found[sku] for sku, q in task.lines.items() if q > found[sku]}
        if not missing:
            return
        task.lines = {sku: q for sku, q in found.items() if q}
        task.status = "short_picked" if task.lines else "nothing_picked"
        self.to_allocation(task.order_id, ShortPicked(shipment_id, task.warehouse_id, missing))

    @precondition(lambda self: self.tasks_in(fulfillment.OPEN))
    @rule(data=st.data())
    def warehouse_packs(self, data: st.DataObject) -> None:
        shipment_id = data.draw(st.sampled_from(self.tasks_in(fulfillment.OPEN)))
        task = self.tasks[shipment_id]
        task.status = fulfillment.SHIPPED
        self.to_allocation(task.order_id, Shipped(shipment_id))

    # ---- invariants ----

    @invariant()
    def never_oversold_never_negative(self) -> None:
        for key, level in self.inventory.ledger.stock.items():
            assert 0 <= level.reserved <= level.on_hand, (key, level)

    @invariant()
    def reserved_equals_the_open_reservations(self) -> None:
        held: dict[tuple[str, str], int] = {}
        for r in self.inventory.ledger.open_reservations():
            held[(r.warehouse_id, r.sku)] = held.get((r.warehouse_id, r.sku), 0) + r.units
        for key, level in self.inventory.ledger.stock.items():
            assert level.reserved == held.get(key, 0), key

    @invariant()
    def on_hand_is_explained_by_receipts_counts_shipments_and_short_picks(self) -> None:
        for key, level in self.inventory.ledger.stock.items():
            assert level.on_hand == self.ledger.get(key, 0), key

    @invariant()
    def every_ordered_unit_is_accounted_for(self) -> None:
        for order in self.inventory.orders.values():
            held: dict[str, int] = {}
            for r in self.inventory.ledger.open_reservations(order_id=order.order_id):
                held[r.sku] = held.get(r.sku, 0) + r.units
            if order.status == "unfulfillable":
                assert not held and not order.backordered and order.order_id not in self.shipped
                continue
            shipped = self.shipped.get(order.order_id, {})
            for sku, quantity in order.lines.items():
                parts = order.cancelled.get(sku, 0) + order.backordered.get(sku, 0) + held.get(sku, 0)
                assert parts + shipped.get(sku, 0) == quantity, (order.order_id, sku)
            assert (order.status == "backordered") == bool(order.backordered)

    @invariant()
    def a_cancelled_order_holds_nothing_once_fulfillment_has_answered_for_its_shipments(self) -> None:
        for order in self.inventory.orders.values():
            if order.status == "cancelled" and not self.topics.busy(order.order_id):
                held = self.inventory.ledger.open_reservations(order_id=order.order_id)
                assert not held, f"cancelled {order.order_id} still holds {[(r.shipment_id, r.sku) for r in held]}"

    def check_priority_then_first_come_first_served(
        self, outcomes: list[Outcome], declined: tuple[uuid.UUID, str] | None = None
    ) -> None:
        uncapped = self.inventory.network.max_shipments
        turn = self.inventory.serving.turn
        for outcome in outcomes:
            if not isinstance(outcome, Allocated) or outcome.reason == "lines not cancelled stay reserved":
                continue
            got = self.inventory.orders[outcome.order_id]
            for shipment in outcome.shipments:
                for sku in shipment.lines:
                    passed = [
                        w
                        for w in self.inventory.serving.waiting_for([sku])
                        if turn(w) < turn(got)
                        and uncapped(w.channel) >= len(WAREHOUSE_IDS)
                        and (w.order_id, shipment.warehouse_id) != declined
                    ]
                    assert not passed, f"{got.order_id} got {sku} while {passed[0].order_id}, ahead of it, waits"


TestAllocationModel = AllocationModel.TestCase
TestAllocationModel.settings = settings(
    # OMS_MODEL_EXAMPLES=3000 for a deeper search than the test suite's
    max_examples=int(os.environ.get("OMS_MODEL_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
