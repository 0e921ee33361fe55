"""The allocation aggregate, scenario by scenario: placing orders, backorders released first come first
served, counts, cancellations, short picks and shipments."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.allocation.inventory import Inventory
from services.allocation.orders import (
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
from services.allocation.routing import Network
from shared.reference.warehouses import DEFAULT_FILE, load_warehouses

NETWORK = Network(load_warehouses(DEFAULT_FILE), channel_max_shipments={"pos": 1})
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def order(lines: dict[str, int], minute: int = 0, country: str = "NL", **fields: Any) -> Order:
    return Order(
        order_id=uuid.uuid4(),
        arrived_at=T0 + timedelta(minutes=minute),
        channel=fields.pop("channel", "webshop"),
        policy=fields.pop("policy", "backorder"),
        ship_to={"country": country, "postal_code": "1012"},
        service_level="standard",
        lines=lines,
        **fields,
    )


def stocked(*receipts: tuple[str, str, int], network: Network = NETWORK) -> Inventory:
    inventory = Inventory(network)
    for warehouse, sku, quantity in receipts:
        inventory.receive(warehouse, sku, quantity)
    return inventory


def allocated(outcomes: list[Outcome]) -> list[Allocated]:
    assert all(isinstance(o, Allocated) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, Allocated)]


def reserved(inventory: Inventory, order_id: uuid.UUID) -> dict[tuple[str, str], int]:
    held: dict[tuple[str, str], int] = {}
    for r in inventory.ledger.open_reservations(order_id=order_id):
        held[(r.warehouse_id, r.sku)] = held.get((r.warehouse_id, r.sku), 0) + r.units
    return held


def test_an_order_in_stock_is_reserved_in_one_shipment_with_the_reason() -> None:
    inventory = stocked(("ams", "A", 5), ("fra", "A", 5))
    first = order({"A": 2})
    [outcome] = inventory.place(first)
    assert isinstance(outcome, Allocated)
    assert [(s.warehouse_id, s.lines) for s in outcome.shipments] == [("ams", {"A": 2})]
    assert outcome.backordered == {}
    assert "nearest warehouse that holds every line" in outcome.reason
    assert inventory.ledger.level("ams", "A").reserved == 2
    assert first.status == "allocated"


def test_safety_stock_is_never_promised() -> None:
    inventory = stocked(("ams", "A", 5), network=Network(NETWORK.warehouses, sku_safety_stock={"A": 2}))
    [outcome] = inventory.place(order({"A": 4}))
    assert isinstance(outcome, Allocated)
    assert outcome.shipments[0].lines == {"A": 3}
    assert outcome.backordered == {"A": 1}


def test_a_partly_available_order_ships_what_is_there_and_backorders_the_rest() -> None:
    inventory = stocked(("ams", "A", 1), ("ams", "B", 3))
    waiting = order({"A": 3, "B": 3})
    [outcome] = inventory.place(waiting)
    assert isinstance(outcome, Allocated)
    assert outcome.shipments[0].lines == {"A": 1, "B": 3}
    assert outcome.backordered == {"A": 2}
    assert waiting.status == "backordered"


def test_an_order_with_nothing_in_stock_is_backordered_with_what_is_missing() -> None:
    inventory = stocked(("ams", "B", 1))
    placed = order({"A": 2})
    assert inventory.place(placed) == [Backordered(placed.order_id, {"A": 2}, "waiting for stock: A short by 2")]


def test_an_order_that_may_not_wait_is_unfulfillable_and_reserves_nothing() -> None:
    inventory = stocked(("ams", "A", 1), ("ams", "B", 3))
    refused = order({"A": 3, "B": 1}, policy="reject")
    [outcome] = inventory.place(refused)
    assert isinstance(outcome, Unfulfillable)
    assert "A short by 2" in outcome.reason
    assert refused.status == "unfulfillable"
    assert inventory.ledger.level("ams", "A").reserved == inventory.ledger.level("ams", "B").reserved == 0


def test_a_receipt_releases_backorders_in_arrival_order() -> None:
    inventory = stocked()
    first, second = order({"A": 2}, minute=1), order({"A": 2}, minute=2)
    inventory.place(second)  # processed first, but arrived later
    inventory.place(first)

    outcomes = allocated(inventory.receive("fra", "A", 3))

    assert [o.order_id for o in outcomes] == [first.order_id, second.order_id]
    assert outcomes[0].shipments[0].lines == {"A": 2}
    assert outcomes[1].shipments[0].lines == {"A": 1} and outcomes[1].backordered == {"A": 1}
    assert outcomes[0].reason.startswith("released from backorder: ")
    assert (first.status, second.status) == ("allocated", "backordered")


def test_a_new_order_does_not_pass_an_earlier_one_waiting_for_the_same_sku() -> None:
    # the earlier order's channel allows one shipment per decision, so it left fra's units alone
    inventory = stocked(("ams", "A", 2), ("fra", "A", 2))
    earlier = order({"A": 4}, minute=1, channel="pos")
    [partial] = inventory.place(earlier)
    assert isinstance(partial, Allocated) and partial.backordered == {"A": 2}

    later = order({"A": 2}, minute=2)
    outcomes = inventory.place(later)

    assert isinstance(outcomes[0], Allocated) and outcomes[0].order_id == earlier.order_id
    assert isinstance(outcomes[1], Backordered) and outcomes[1].order_id == later.order_id
    assert len(outcomes) == 2
    assert earlier.status == "allocated"


def test_a_count_below_reserved_keeps_on_hand_at_reserved_and_reports_it() -> None:
    inventory = stocked(("ams", "A", 5))
    inventory.place(order({"A": 4}))
    assert inventory.count("ams", "A", 1) == [CountShort("ams", "A", 1, 4)]
    assert (inventory.ledger.level("ams", "A").on_hand, inventory.ledger.level("ams", "A").reserved) == (4, 4)


def test_a_count_that_finds_more_releases_backorders() -> None:
    inventory = stocked(("ams", "A", 1))
    waiting = order({"A": 3})
    inventory.place(waiting)
    [outcome] = inventory.count("ams", "A", 4)
    assert isinstance(outcome, Allocated) and outcome.order_id == waiting.order_id
    assert outcome.shipments[0].lines == {"A": 2}


def test_cancelling_a_whole_order_releases_its_shipments_and_backorders_to_the_next_in_line() -> None:
    inventory = stocked(("ams", "A", 2))
    cancelled, next_in_line = order({"A": 3}, minute=1), order({"A": 2}, minute=2)
    [allocation] = allocated(inventory.place(cancelled))
    inventory.place(next_in_line)
    shipment = allocation.shipments[0].shipment_id

    outcomes = inventory.cancel(cancelled.order_id, None, [shipment], "customer request")

    assert outcomes[0] == Cancelled(cancelled.order_id, None, "customer request")
    assert isinstance(outcomes[1], Allocated) and outcomes[1].order_id == next_in_line.order_id
    assert cancelled.status == "cancelled" and cancelled.backordered == {} and cancelled.cancelled == {"A": 3}
    assert reserved(inventory, cancelled.order_id) == {}
    assert reserved(inventory, next_in_line.order_id) == {("ams", "A"): 2}


def test_a_partial_cancellation_keeps_the_other_lines_of_a_withdrawn_shipment_reserved_in_place() -> None:
    inventory = stocked(("fra", "A", 5), ("fra", "B", 5))
    placed = order({"A": 2, "B": 1}, country="DE")
    [allocation] = allocated(inventory.place(placed))
    shipment = allocation.shipments[0].shipment_id

    outcomes = inventory.cancel(placed.order_id, {"A": 1}, [shipment], "one too many")

    assert outcomes[0] == Cancelled(placed.order_id, {"A": 1}, "one too many")
    kept = outcomes[1]
    assert isinstance(kept, Allocated)
    assert [(s.warehouse_id, s.lines) for s in kept.shipments] == [("fra", {"A": 1, "B": 1})]
    assert kept.shipments[0].shipment_id != shipment
    assert reserved(inventory, placed.order_id) == {("fra", "A"): 1, ("fra", "B"): 1}
    assert inventory.ledger.level("fra", "A").reserved == 1
    assert placed.status == "allocated"


def test_a_partial_cancellation_that_crossed_the_allocation_asks_for_the_unseen_shipment_to_be_withdrawn() -> None:
    inventory = stocked(("fra", "A", 5), ("fra", "B", 5))
    placed = order({"A": 2, "B": 1}, country="DE")
    [allocation] = allocated(inventory.place(placed))
    shipment = allocation.shipments[0].shipment_id

    # when fulfillment accepted a cancellation of A before that shipment reached it (it withdrew nothing)
    outcomes = inventory.cancel(placed.order_id, {"A": 2}, [], "crossed")

    # then nothing is cancelled yet: fulfillment is asked to withdraw A from the shipment it had not seen
    assert outcomes == [WithdrawalWanted(placed.order_id, shipment, "fra", {"A": 2}, "crossed")]
    assert placed.cancelled == {} and reserved(inventory, placed.order_id) == {("fra", "A"): 2, ("fra", "B"): 1}

    # when it withdraws the shipment
    outcomes = inventory.cancel(placed.order_id, {"A": 2}, [shipment], "crossed")

    # then A is cancelled and B stays reserved, in a new shipment
    assert outcomes[0] == Cancelled(placed.order_id, {"A": 2}, "crossed")
    [kept] = allocated(outcomes[1:])
    assert [(s.warehouse_id, s.lines) for s in kept.shipments] == [("fra", {"B": 1})]
    assert reserved(inventory, placed.order_id) == {("fra", "B"): 1}


def test_a_crossed_cancellation_takes_what_waits_at_once_and_asks_for_the_rest_to_be_withdrawn() -> None:
    inventory = stocked(("ams", "A", 1))
    placed = order({"A": 3})
    [allocation] = allocated(inventory.place(placed))
    shipment = allocation.shipments[0].shipment_id

    outcomes = inventory.cancel(placed.order_id, {"A": 3}, [], "all of it")

    assert outcomes == [
        Cancelled(placed.order_id, {"A": 2}, "all of it"),
        WithdrawalWanted(placed.order_id, shipment, "ams", {"A": 1}, "all of it"),
    ]
    outcomes = inventory.cancel(placed.order_id, {"A": 1}, [shipment], "all of it")
    assert outcomes == [Cancelled(placed.order_id, None, "all of it")]
    assert placed.status == "cancelled" and inventory.ledger.level("ams", "A").reserved == 0


def test_a_cancellation_of_waiting_units_takes_them_from_the_backorder_first() -> None:
    inventory = stocked(("ams", "A", 1))
    placed = order({"A": 3})
    inventory.place(placed)
    [outcome] = inventory.cancel(placed.order_id, {"A": 2}, [], "fewer")
    assert outcome == Cancelled(placed.order_id, {"A": 2}, "fewer")
    assert placed.backordered == {} and placed.status == "allocated"
    assert reserved(inventory, placed.order_id) == {("ams", "A"): 1}


def test_a_cancellation_that_overtook_its_order_is_applied_when_the_order_arrives() -> None:
    inventory = stocked(("ams", "A", 5))
    early = order({"A": 2})
    outcomes = inventory.place(early, CancelRequest(None, "changed my mind"))
    assert outcomes == [Cancelled(early.order_id, None, "changed my mind")]
    assert early.status == "cancelled" and inventory.ledger.level("ams", "A").reserved == 0


def test_a_short_pick_corrects_on_hand_and_routes_the_missing_units_to_another_warehouse() -> None:
    inventory = stocked(("ams", "A", 5), ("fra", "A", 5))
    placed = order({"A": 3})
    [allocation] = allocated(inventory.place(placed))
    shipment = allocation.shipments[0].shipment_id

    [outcome] = inventory.short_pick(placed.order_id, shipment, "ams", {"A": 2})

    assert isinstance(outcome, Allocated)
    assert [(s.warehouse_id, s.lines) for s in outcome.shipments] == [("fra", {"A": 2})]
    assert outcome.reason.startswith("short pick at ams (A short by 2): one shipment from fra")
    assert (inventory.ledger.level("ams", "A").on_hand, inventory.ledger.level("ams", "A").reserved) == (3, 1)
    assert reserved(inventory, placed.order_id) == {("ams", "A"): 1, ("fra", "A"): 2}
    # the same report again changes nothing
    assert inventory.short_pick(placed.order_id, shipment, "ams", {"A": 2}) == []


def test_a_shipment_short_of_every_unit_is_closed_so_a_cancelled_order_holds_nothing() -> None:
    # given an order whose only shipment the warehouse could not find anything of
    inventory = stocked(("ams", "A", 1))
    placed = order({"A": 1})
    [allocation] = allocated(inventory.place(placed))
    inventory.short_pick(placed.order_id, allocation.shipments[0].shipment_id, "ams", {"A": 1})
    assert placed.backordered == {"A": 1}
    # when the order is cancelled
    inventory.cancel(placed.order_id, None, [], "no longer needed")
    # then it holds no reservation, not even an empty one
    assert placed.status == "cancelled" and inventory.ledger.open_reservations(order_id=placed.order_id) == []


def test_a_short_pick_no_other_warehouse_can_cover_is_backordered() -> None:
    inventory = stocked(("ams", "A", 5))
    placed = order({"A": 2})
    [allocation] = allocated(inventory.place(placed))
    shipment = allocation.shipments[0].shipment_id
    [outcome] = inventory.short_pick(placed.order_id, shipment, "ams", {"A": 2})
    assert isinstance(outcome, Backordered) and outcome.missing == {"A": 2}
    assert placed.status == "backordered"
    # the shipment has nothing left: it holds no open reservation, so a cancellation finds nothing to release
    assert inventory.ledger.open_reservations(order_id=placed.order_id) == []
    inventory.cancel(placed.order_id, {"A": 2}, [], "no longer needed")
    assert inventory.orders[placed.order_id].status == "cancelled"
    assert inventory.ledger.open_reservations(order_id=placed.order_id) == []


def test_shipping_takes_the_units_out_of_on_hand_and_reserved() -> None:
    inventory = stocked(("ams", "A", 5))
    [allocation] = allocated(inventory.place(order({"A": 2})))
    assert inventory.ship(allocation.shipments[0].shipment_id) == 2
    assert (inventory.ledger.level("ams", "A").on_hand, inventory.ledger.level("ams", "A").reserved) == (3, 0)
    assert inventory.ship(allocation.shipments[0].shipment_id) == 0


def test_a_shipment_fulfillment_withdraws_after_the_whole_order_was_cancelled_is_released_too() -> None:
    # given an order holding a shipment, and one waiting behind it
    inventory = stocked(("ams", "A", 2))
    placed, next_in_line = order({"A": 2}, minute=1), order({"A": 1}, minute=2)
    [allocation] = allocated(inventory.place(placed))
    inventory.place(next_in_line)
    shipment = allocation.shipments[0].shipment_id
    # when fulfillment accepts the whole cancellation before it has seen that shipment (nothing to withdraw)
    [cancelled] = inventory.cancel(placed.order_id, None, [], "customer request")
    assert cancelled == Cancelled(placed.order_id, None, "customer request")
    assert reserved(inventory, placed.order_id) == {("ams", "A"): 2}  # not fulfillment's to release yet
    # and withdraws the shipment as soon as it arrives
    outcomes = inventory.cancel(placed.order_id, None, [shipment], "customer request")

    # then its units are released and cancelled, and go to the next in line; nothing new is said of the order
    assert [o.order_id for o in allocated(outcomes)] == [next_in_line.order_id]
    assert reserved(inventory, placed.order_id) == {}
    assert placed.status == "cancelled" and placed.cancelled == {"A": 2}
    assert reserved(inventory, next_in_line.order_id) == {("ams", "A"): 1}


def test_a_backorder_released_while_the_whole_order_is_cancelled_is_released_when_fulfillment_withdraws_it() -> None:
    # given an order waiting for stock
    inventory = stocked()
    placed = order({"A": 2, "B": 1})
    inventory.place(placed)
    # when a receipt releases part of it just before fulfillment's acceptance of the whole cancellation arrives
    [released] = allocated(inventory.receive("fra", "A", 2))
    inventory.cancel(placed.order_id, None, [], "customer request")
    assert placed.status == "cancelled" and placed.cancelled == {"B": 1}
    # then the new shipment, born withdrawn at fulfillment, is released when that is reported
    assert inventory.cancel(placed.order_id, None, [released.shipments[0].shipment_id], "customer request") == []
    assert inventory.ledger.level("fra", "A").reserved == 0
    assert placed.cancelled == {"A": 2, "B": 1}
    # and a repeat of that report changes nothing
    assert inventory.cancel(placed.order_id, None, [released.shipments[0].shipment_id], "customer request") == []
    assert placed.cancelled == {"A": 2, "B": 1}


def test_cancellations_of_an_order_not_seen_yet_add_up_and_a_whole_order_one_wins() -> None:
    # given a partial cancellation that overtook its order
    first = CancelRequest({"A": 1}, "damaged box")
    # when another arrives before the order: a partial one adds up, a whole-order one wins, the later reason stays
    assert first.and_then(CancelRequest({"A": 1, "B": 2}, "changed my mind")) == CancelRequest(
        {"A": 2, "B": 2}, "changed my mind"
    )
    assert first.and_then(CancelRequest(None, "changed my mind")) == CancelRequest(None, "changed my mind")
    assert CancelRequest(None, "damaged box").and_then(first) == CancelRequest(None, "damaged box")


def test_units_routed_count_as_demand_where_they_are_reserved_and_units_kept_after_a_cancellation_do_not_again() -> (
    None
):
    # given an order for 3 units of which only 2 are in stock, in Frankfurt
    inventory = stocked(("fra", "A", 2), ("fra", "B", 5))
    placed = order({"A": 3, "B": 1}, country="DE")
    [allocation] = allocated(inventory.place(placed))
    # when B is cancelled from the withdrawn shipment (its 2 units of A are kept reserved as a new shipment), and a
    # receipt releases the unit of A that waits
    inventory.cancel(placed.order_id, {"B": 1}, [allocation.shipments[0].shipment_id], "one too many")
    inventory.receive("fra", "A", 1)
    # then the demand is what routing reserved: 2 + 1 of A, 1 of B, nothing counted twice
    assert inventory.demanded == {("fra", "A"): 3, ("fra", "B"): 1}
