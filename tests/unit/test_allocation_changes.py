"""An order change applied to the allocation aggregate: released and newly needed stock in one step (never
double counted, never lost), re-routed to the warehouse nearest the new ship-to, what is short waiting or refused by
policy, and a later report of the same version only routing again what was withdrawn since."""

import uuid
from datetime import UTC, datetime

from services.allocation.changes import Change, Changed, apply_change
from services.allocation.inventory import Inventory
from services.allocation.orders import Allocated, Order
from services.allocation.routing import Network
from shared.reference.warehouses import DEFAULT_FILE, load_warehouses

NETWORK = Network(tuple(load_warehouses(DEFAULT_FILE)))
AMSTERDAM = {"country": "NL", "postal_code": "1012 JS", "city": "Amsterdam"}
LYON = {"country": "FR", "postal_code": "69002", "city": "Lyon"}


def placed(
    stock: dict[tuple[str, str], int], lines: dict[str, int], policy: str = "backorder"
) -> tuple[Inventory, Order]:
    inventory = Inventory(NETWORK)
    for (warehouse, sku), n in stock.items():
        inventory.ledger.receive(warehouse, sku, n)
    order = Order(uuid.uuid4(), datetime(2026, 1, 5, tzinfo=UTC), "webshop", policy, AMSTERDAM, "standard", dict(lines))  # type: ignore[arg-type]
    inventory.place(order)
    return inventory, order


def change(
    order: Order,
    lines: dict[str, int],
    withdrawn: list[uuid.UUID],
    ship_to: dict[str, str] = AMSTERDAM,
    version: int = 1,
) -> Change:
    return Change(order.order_id, "c-1", version, ship_to, "standard", lines, frozenset(withdrawn), "customer request")


def held(inventory: Inventory, order: Order) -> list[tuple[str, str, int]]:
    return sorted((r.warehouse_id, r.sku, r.units) for r in inventory.ledger.open_reservations(order_id=order.order_id))


def shipments_of(inventory: Inventory, order: Order) -> list[uuid.UUID]:
    return sorted({r.shipment_id for r in inventory.ledger.open_reservations(order_id=order.order_id)})


def levels(inventory: Inventory, *keys: tuple[str, str]) -> list[tuple[int, int]]:
    return [(inventory.ledger.level(*k).on_hand, inventory.ledger.level(*k).reserved) for k in keys]


def test_a_new_country_releases_and_reserves_nearer_in_one_step() -> None:
    inventory, order = placed({("ams", "A"): 1, ("lyo", "A"): 1}, {"A": 1})
    assert held(inventory, order) == [("ams", "A", 1)]

    outcomes = apply_change(inventory, change(order, {"A": 1}, shipments_of(inventory, order), ship_to=LYON))

    assert held(inventory, order) == [("lyo", "A", 1)]
    assert levels(inventory, ("ams", "A"), ("lyo", "A")) == [(1, 0), (1, 1)]
    allocated, changed = outcomes
    assert isinstance(allocated, Allocated) and allocated.reason.startswith(
        "order changed (version 1): one shipment from lyo"
    )
    assert isinstance(changed, Changed) and (changed.lines, changed.backordered, changed.refused) == ({"A": 1}, {}, {})
    assert (order.version, order.ship_to, order.status) == (1, LYON, "allocated")


def test_more_units_than_in_stock_wait_for_the_rest() -> None:
    inventory, order = placed({("ams", "A"): 2}, {"A": 2})

    *_, changed = apply_change(inventory, change(order, {"A": 5}, []))

    assert held(inventory, order) == [("ams", "A", 2)]
    assert isinstance(changed, Changed) and changed.backordered == {"A": 3}
    assert (order.lines, order.backordered, order.status) == ({"A": 5}, {"A": 3}, "backordered")


def test_an_order_that_does_not_wait_has_the_units_short_refused() -> None:
    inventory, order = placed({("ams", "A"): 3}, {"A": 2}, policy="reject")

    *_, changed = apply_change(inventory, change(order, {"A": 5}, []))

    assert isinstance(changed, Changed) and (changed.lines, changed.refused) == ({"A": 3}, {"A": 2})
    assert held(inventory, order) == [("ams", "A", 1), ("ams", "A", 2)]  # the two kept, the one added
    assert (order.lines, order.backordered, order.status) == ({"A": 3}, {}, "allocated")


def test_fewer_units_release_what_the_withdrawn_shipment_held_beyond_them() -> None:
    inventory, order = placed({("ams", "A"): 3, ("ams", "B"): 1}, {"A": 3, "B": 1})

    apply_change(inventory, change(order, {"A": 1}, shipments_of(inventory, order)))

    assert held(inventory, order) == [("ams", "A", 1)]
    assert levels(inventory, ("ams", "A"), ("ams", "B")) == [(3, 1), (1, 0)]
    assert order.lines == {"A": 1}


def test_the_same_version_again_only_routes_what_was_withdrawn_since() -> None:
    inventory, order = placed({("ams", "A"): 2, ("lyo", "A"): 2}, {"A": 1})
    first = shipments_of(inventory, order)
    apply_change(inventory, change(order, {"A": 1}, first, ship_to=LYON))
    assert apply_change(inventory, change(order, {"A": 1}, [], ship_to=LYON)) == []  # nothing withdrawn since

    # a stale shipment of version 0 that fulfillment withdrew when it came: its units go round again
    stale = shipments_of(inventory, order)
    outcomes = apply_change(inventory, change(order, {"A": 1}, stale, ship_to=LYON))

    assert [type(o).__name__ for o in outcomes] == ["Allocated"]
    assert held(inventory, order) == [("lyo", "A", 1)] and order.lines == {"A": 1}
    assert levels(inventory, ("ams", "A"), ("lyo", "A")) == [(2, 0), (2, 1)]
