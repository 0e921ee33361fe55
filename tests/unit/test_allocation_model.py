"""Property-based model of allocation: random receipts, counts, orders, cancellations, short picks and
shipments driven against the aggregate the service runs (hypothesis stateful testing), with the
invariants checked after every step:
- never oversold, never negative: 0 <= reserved <= on hand everywhere;
- reserved equals the open reservations, per (warehouse, sku);
- on hand equals receipts and count corrections minus shipped and short-picked units (an independent ledger);
- every unit of every order is accounted for: cancelled, waiting, reserved in an open shipment, or shipped;
- first come first served: no order gets new units of a SKU while an earlier order (whose channel may use
  every warehouse, and which did not just decline that warehouse after a short pick there) still waits
  for that SKU.
"""

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.allocation.domain import Network
from services.allocation.inventory import Allocated, Inventory, Order, Outcome
from shared.warehouses import DEFAULT_FILE, load_warehouses

WAREHOUSES = load_warehouses(DEFAULT_FILE)
WAREHOUSE_IDS = [w.id for w in WAREHOUSES]
SKUS = ["A", "B", "C"]
CHANNELS = {"webshop": 3, "pos": 1, "marketplace": 2}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

warehouses = st.sampled_from(WAREHOUSE_IDS)
skus = st.sampled_from(SKUS)


class AllocationModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ids = 0
        self.inventory = Inventory(Network(WAREHOUSES))
        self.ledger: dict[tuple[str, str], int] = {}
        self.shipped: dict[uuid.UUID, dict[str, int]] = {}
        self.clock = 0

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
        self.inventory = Inventory(network, new_id=self.next_id)

    def next_id(self) -> uuid.UUID:
        # Ids in creation order keep the generated steps reproducible.
        self.ids += 1
        return uuid.UUID(int=self.ids)

    # ---- operations ----

    @rule(warehouse=warehouses, sku=skus, quantity=st.integers(1, 8))
    def receive(self, warehouse: str, sku: str, quantity: int) -> None:
        self.ledger[(warehouse, sku)] = self.ledger.get((warehouse, sku), 0) + quantity
        self.check_first_come_first_served(self.inventory.receive(warehouse, sku, quantity))

    @rule(warehouse=warehouses, sku=skus, counted=st.integers(0, 12))
    def count(self, warehouse: str, sku: str, counted: int) -> None:
        reserved = self.inventory.level(warehouse, sku).reserved
        self.ledger[(warehouse, sku)] = max(counted, reserved)
        self.check_first_come_first_served(self.inventory.count(warehouse, sku, counted))

    @rule(
        lines=st.dictionaries(skus, st.integers(1, 6), min_size=1),
        channel=st.sampled_from(sorted(CHANNELS)),
        policy=st.sampled_from(["backorder", "backorder", "reject"]),
        country=st.sampled_from(["NL", "DE", "FR", "ES", "US"]),
        arrived_earlier_by=st.integers(0, 3),
    )
    def place(self, lines: dict[str, int], channel: str, policy: str, country: str, arrived_earlier_by: int) -> None:
        # Orders may reach allocation in a different order from the one they arrived in.
        self.clock += 1
        order = Order(
            order_id=self.next_id(),
            arrived_at=T0 + timedelta(minutes=self.clock - arrived_earlier_by),
            channel=channel,
            policy=policy,  # type: ignore[arg-type]
            ship_to={"country": country},
            service_level="standard",
            lines=lines,
        )
        self.check_first_come_first_served(self.inventory.place(order))

    def live_orders(self) -> list[Order]:
        return [o for o in self.inventory.orders.values() if o.status in ("allocated", "backordered")]

    @precondition(lambda self: self.live_orders())
    @rule(data=st.data(), whole=st.booleans())
    def cancel(self, data: st.DataObject, whole: bool) -> None:
        order = data.draw(st.sampled_from(self.live_orders()))
        lines = None if whole else data.draw(st.dictionaries(st.sampled_from(sorted(order.lines)), st.integers(1, 6)))
        # as fulfillment does: every open shipment holding a cancelled line is withdrawn
        withdrawn = {
            r.shipment_id
            for r in self.inventory.open_reservations(order_id=order.order_id)
            if lines is None or r.sku in lines
        }
        self.check_first_come_first_served(self.inventory.cancel(order.order_id, lines, withdrawn, "test"))

    def open_shipments(self) -> list[uuid.UUID]:
        return sorted({r.shipment_id for r in self.inventory.open_reservations()})

    @precondition(lambda self: self.open_shipments())
    @rule(data=st.data())
    def short_pick(self, data: st.DataObject) -> None:
        shipment = data.draw(st.sampled_from(self.open_shipments()))
        parts = self.inventory.open_reservations(shipment_id=shipment)
        missing = data.draw(st.dictionaries(st.sampled_from([r.sku for r in parts]), st.integers(1, 6), min_size=1))
        for r in parts:
            lost = min(max(r.short, missing.get(r.sku, 0)), r.quantity) - r.short
            self.ledger[(r.warehouse_id, r.sku)] -= lost
        order_id, warehouse = parts[0].order_id, parts[0].warehouse_id
        outcomes = self.inventory.short_pick(order_id, shipment, warehouse, missing)
        # the short-picked order declines that warehouse for this one decision; its units go to the next in line
        self.check_first_come_first_served(outcomes, declined=(order_id, warehouse))

    @precondition(lambda self: self.open_shipments())
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        shipment = data.draw(st.sampled_from(self.open_shipments()))
        for r in self.inventory.open_reservations(shipment_id=shipment):
            self.ledger[(r.warehouse_id, r.sku)] -= r.units
            shipped = self.shipped.setdefault(r.order_id, {})
            shipped[r.sku] = shipped.get(r.sku, 0) + r.units
        self.inventory.ship(shipment)

    # ---- invariants ----

    @invariant()
    def never_oversold_never_negative(self) -> None:
        for key, level in self.inventory.stock.items():
            assert 0 <= level.reserved <= level.on_hand, (key, level)

    @invariant()
    def reserved_equals_the_open_reservations(self) -> None:
        held: dict[tuple[str, str], int] = {}
        for r in self.inventory.open_reservations():
            held[(r.warehouse_id, r.sku)] = held.get((r.warehouse_id, r.sku), 0) + r.units
        for key, level in self.inventory.stock.items():
            assert level.reserved == held.get(key, 0), key

    @invariant()
    def on_hand_is_explained_by_receipts_counts_shipments_and_short_picks(self) -> None:
        for key, level in self.inventory.stock.items():
            assert level.on_hand == self.ledger.get(key, 0), key

    @invariant()
    def every_ordered_unit_is_accounted_for(self) -> None:
        for order in self.inventory.orders.values():
            held: dict[str, int] = {}
            for r in self.inventory.open_reservations(order_id=order.order_id):
                held[r.sku] = held.get(r.sku, 0) + r.units
            if order.status == "unfulfillable":
                assert not held and not order.backordered and order.order_id not in self.shipped
                continue
            shipped = self.shipped.get(order.order_id, {})
            for sku, quantity in order.lines.items():
                parts = order.cancelled.get(sku, 0) + order.backordered.get(sku, 0) + held.get(sku, 0)
                assert parts + shipped.get(sku, 0) == quantity, (order.order_id, sku)
            assert (order.status == "backordered") == bool(order.backordered)

    def check_first_come_first_served(
        self, outcomes: list[Outcome], declined: tuple[uuid.UUID, str] | None = None
    ) -> None:
        uncapped = self.inventory.network.max_shipments
        for outcome in outcomes:
            if not isinstance(outcome, Allocated) or outcome.reason == "lines not cancelled stay reserved":
                continue
            got = self.inventory.orders[outcome.order_id]
            for shipment in outcome.shipments:
                for sku in shipment.lines:
                    passed = [
                        w
                        for w in self.inventory.waiting_for([sku])
                        if w.queue_position < got.queue_position
                        and uncapped(w.channel) >= len(WAREHOUSE_IDS)
                        and (w.order_id, shipment.warehouse_id) != declined
                    ]
                    assert not passed, f"{got.order_id} got {sku} while earlier {passed[0].order_id} waits"


TestAllocationModel = AllocationModel.TestCase
TestAllocationModel.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
