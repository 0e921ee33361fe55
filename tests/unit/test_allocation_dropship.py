"""The allocation aggregate with dropship lines: each supplier's lines become one purchase order, warehouse lines are
reserved as always, and lines a supplier declines are routed to a warehouse that has them or wait for stock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.allocation.dropship import split
from services.allocation.orders import Allocated, Backordered, Cancelled, CancelRequest, Order, Outcome
from shared.reference.suppliers import Supplier, Suppliers
from tests.unit.test_allocation_inventory import order, reserved, stocked

SUPPLIERS = Suppliers(
    (
        Supplier("acme", "Acme", ("DS-ACME-*",), timedelta(hours=1), 2),
        Supplier("nordic", "Nordic", ("DS-NORDIC-*",), timedelta(seconds=5), 3),
    )
)


def dropship_order(lines: dict[str, int], **fields: Any) -> Order:
    return order(lines, dropship=split(lines, SUPPLIERS).dropship, **fields)


def purchase_orders(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    [dropshipped] = [o for o in outcomes if isinstance(o, Allocated) and o.purchase_orders]
    return {p.supplier_id: p.lines for p in dropshipped.purchase_orders}


def test_an_order_of_dropship_lines_only_is_one_purchase_order_per_supplier_and_reserves_no_stock() -> None:
    # given stock of the dropship SKU in a warehouse too
    inventory = stocked(("ams", "DS-ACME-SOFA", 5))
    new = dropship_order({"DS-ACME-SOFA": 1, "DS-ACME-TABLE": 2, "DS-NORDIC-LAMP": 3})
    # when it is placed
    outcomes = inventory.place(new)
    # then one purchase order per supplier, nothing reserved, nothing waits, and the order counts as allocated
    assert len(outcomes) == 1
    assert purchase_orders(outcomes) == {
        "acme": {"DS-ACME-SOFA": 1, "DS-ACME-TABLE": 2},
        "nordic": {"DS-NORDIC-LAMP": 3},
    }
    assert reserved(inventory, new.order_id) == {}
    assert new.status == "allocated" and new.backordered == {}
    assert new.dropship == {"acme": {"DS-ACME-SOFA": 1, "DS-ACME-TABLE": 2}, "nordic": {"DS-NORDIC-LAMP": 3}}


def test_a_mixed_order_reserves_its_warehouse_lines_and_buys_its_dropship_lines() -> None:
    inventory = stocked(("ams", "MUG", 5))
    new = dropship_order({"MUG": 2, "DS-ACME-SOFA": 1})
    outcomes = inventory.place(new)
    # then one announcement: the warehouse shipment and the purchase order together
    [announced] = outcomes
    assert purchase_orders(outcomes) == {"acme": {"DS-ACME-SOFA": 1}}
    assert isinstance(announced, Allocated)
    assert [(s.warehouse_id, s.lines) for s in announced.shipments] == [("ams", {"MUG": 2})]
    assert reserved(inventory, new.order_id) == {("ams", "MUG"): 2}


def test_a_mixed_order_that_will_not_wait_and_lacks_warehouse_stock_is_rejected_and_buys_nothing() -> None:
    inventory = stocked()
    new = dropship_order({"MUG": 2, "DS-ACME-SOFA": 1}, policy="reject")
    outcomes = inventory.place(new)
    assert not [o for o in outcomes if isinstance(o, Allocated) and o.purchase_orders]
    assert new.status == "unfulfillable" and new.dropship == {}


def test_a_mixed_order_whose_warehouse_lines_wait_announces_its_purchase_order_then_the_backorder() -> None:
    inventory = stocked()
    new = dropship_order({"MUG": 2, "DS-ACME-SOFA": 1})
    first, then = inventory.place(new)
    assert isinstance(first, Allocated) and first.backordered == {"MUG": 2} and not first.shipments
    assert purchase_orders([first]) == {"acme": {"DS-ACME-SOFA": 1}}
    assert isinstance(then, Backordered) and new.status == "backordered"


def test_an_early_cancellation_of_a_dropship_line_leaves_it_out_of_the_purchase_order() -> None:
    inventory = stocked()
    new = dropship_order({"DS-ACME-SOFA": 1, "DS-ACME-TABLE": 2})
    outcomes = inventory.place(new, CancelRequest({"DS-ACME-TABLE": 2}, "changed my mind"))
    assert isinstance(outcomes[0], Cancelled)
    assert purchase_orders(outcomes) == {"acme": {"DS-ACME-SOFA": 1}}


def test_declined_lines_are_routed_to_a_warehouse_that_has_them() -> None:
    # given a dropship order placed, and the SKU in stock in Frankfurt only
    inventory = stocked(("fra", "DS-ACME-SOFA", 4))
    new = dropship_order({"DS-ACME-SOFA": 3})
    inventory.place(new)
    # when the supplier rejects it
    outcomes = inventory.decline(new.order_id, "acme", {"DS-ACME-SOFA": 3}, "acme rejected: ")
    # then the units are reserved in Frankfurt, the reason saying why
    [allocated] = outcomes
    assert isinstance(allocated, Allocated) and allocated.reason.startswith("acme rejected: ")
    assert [(s.warehouse_id, s.lines) for s in allocated.shipments] == [("fra", {"DS-ACME-SOFA": 3})]
    assert reserved(inventory, new.order_id) == {("fra", "DS-ACME-SOFA"): 3}
    assert new.dropship == {} and new.status == "allocated"


def test_declined_lines_no_warehouse_has_wait_for_stock_and_a_receipt_releases_them() -> None:
    inventory = stocked()
    new = dropship_order({"DS-NORDIC-LAMP": 2})
    inventory.place(new)
    [backordered] = inventory.decline(new.order_id, "nordic", {"DS-NORDIC-LAMP": 2}, "nordic timed out: ")
    assert isinstance(backordered, Backordered) and backordered.missing == {"DS-NORDIC-LAMP": 2}
    assert inventory.orders[new.order_id].status == "backordered"
    [released] = inventory.receive("lyo", "DS-NORDIC-LAMP", 2)
    assert isinstance(released, Allocated) and inventory.orders[new.order_id].status == "allocated"


def test_the_remainder_of_a_partial_acceptance_is_routed_and_the_accepted_units_stay_with_the_supplier() -> None:
    inventory = stocked(("ams", "DS-ACME-SOFA", 5))
    new = dropship_order({"DS-ACME-SOFA": 3, "DS-ACME-TABLE": 1})
    inventory.place(new)
    inventory.decline(new.order_id, "acme", {"DS-ACME-SOFA": 1}, "acme partially accepted: ")
    assert new.dropship == {"acme": {"DS-ACME-SOFA": 2, "DS-ACME-TABLE": 1}}
    assert reserved(inventory, new.order_id) == {("ams", "DS-ACME-SOFA"): 1}


def test_a_repeated_or_excessive_decline_routes_no_more_than_the_supplier_held() -> None:
    inventory = stocked(("ams", "DS-ACME-SOFA", 10))
    new = dropship_order({"DS-ACME-SOFA": 2})
    inventory.place(new)
    first = inventory.decline(new.order_id, "acme", {"DS-ACME-SOFA": 5}, "")
    again = inventory.decline(new.order_id, "acme", {"DS-ACME-SOFA": 2}, "")
    assert len(first) == 1 and again == []
    assert reserved(inventory, new.order_id) == {("ams", "DS-ACME-SOFA"): 2}


def test_declined_lines_of_a_cancelled_order_count_as_cancelled_and_reserve_nothing() -> None:
    inventory = stocked(("ams", "DS-ACME-SOFA", 10))
    new = dropship_order({"DS-ACME-SOFA": 2})
    inventory.place(new)
    new.status = "cancelled"
    assert inventory.decline(new.order_id, "acme", {"DS-ACME-SOFA": 2}, "") == []
    assert new.cancelled == {"DS-ACME-SOFA": 2} and reserved(inventory, new.order_id) == {}


def test_a_whole_order_cancelled_withdraws_its_purchase_orders_and_their_units_count_as_cancelled() -> None:
    inventory = stocked(("ams", "MUG", 5))
    new = dropship_order({"MUG": 1, "DS-ACME-SOFA": 2, "DS-NORDIC-LAMP": 1})
    [allocated] = inventory.place(new)
    assert isinstance(allocated, Allocated)
    outcomes = inventory.cancel(new.order_id, None, [allocated.shipments[0].shipment_id], "customer request")
    assert [type(o) for o in outcomes] == [Cancelled]
    assert new.status == "cancelled" and new.dropship == {} and new.backordered == {}
    assert new.cancelled == {"MUG": 1, "DS-ACME-SOFA": 2, "DS-NORDIC-LAMP": 1}


def test_cancelling_one_line_of_a_purchase_order_routes_its_other_lines_anew() -> None:
    # given a purchase order of two SKUs with acme, and the table also in Frankfurt
    inventory = stocked(("fra", "DS-ACME-TABLE", 3))
    new = dropship_order({"DS-ACME-SOFA": 2, "DS-ACME-TABLE": 1})
    inventory.place(new)
    # when the sofa is cancelled (fulfillment withdrew the whole purchase order)
    outcomes = inventory.cancel(new.order_id, {"DS-ACME-SOFA": 2}, [], "customer request")
    # then the sofa is cancelled and the table, no longer with the supplier, is reserved in Frankfurt
    cancelled, allocated = outcomes
    assert isinstance(cancelled, Cancelled) and cancelled.lines == {"DS-ACME-SOFA": 2}
    assert isinstance(allocated, Allocated)
    assert reserved(inventory, new.order_id) == {("fra", "DS-ACME-TABLE"): 1}
    assert new.dropship == {} and new.status == "allocated"


def test_cancelling_a_warehouse_line_leaves_the_purchase_orders_alone() -> None:
    inventory = stocked(("ams", "MUG", 5))
    new = dropship_order({"MUG": 1, "DS-ACME-SOFA": 2})
    [allocated] = inventory.place(new)
    assert isinstance(allocated, Allocated)
    inventory.cancel(new.order_id, {"MUG": 1}, [allocated.shipments[0].shipment_id], "customer request")
    assert new.dropship == {"acme": {"DS-ACME-SOFA": 2}} and new.cancelled == {"MUG": 1}
