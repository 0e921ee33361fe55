"""The stock ledger on its own: available to promise, counts, holds that would oversell, lost units."""

import uuid

import pytest

from services.allocation.ledger import Ledger, available_to_promise, count_reconciliation


def ledger() -> Ledger:
    return Ledger(("ams", "fra"), lambda warehouse_id, sku: 0)


def test_available_to_promise_is_on_hand_less_reserved_less_safety_stock() -> None:
    assert available_to_promise(on_hand=10, reserved=3, safety_stock=2) == 5


def test_available_to_promise_is_never_negative() -> None:
    assert available_to_promise(on_hand=4, reserved=3, safety_stock=2) == 0


def test_a_count_below_reserved_keeps_the_reserved_units_and_reports_the_shortfall() -> None:
    assert count_reconciliation(counted=10, reserved=4) == (10, 0)
    assert count_reconciliation(counted=3, reserved=5) == (5, 2)


def test_a_hold_beyond_what_is_on_hand_is_refused() -> None:
    # given 3 units on hand
    stock = ledger()
    stock.receive("ams", "X", 3)
    # when 4 are held, then the ledger refuses rather than oversell
    with pytest.raises(AssertionError, match="oversell"):
        stock.hold(uuid.uuid4(), uuid.uuid4(), "ams", "X", 4)
    assert stock.level("ams", "X").reserved == 0


def test_units_reported_lost_twice_leave_stock_once() -> None:
    # given 5 units on hand, 4 of them held for a shipment
    stock = ledger()
    stock.receive("ams", "X", 5)
    shipment = uuid.uuid4()
    stock.hold(uuid.uuid4(), shipment, "ams", "X", 4)
    reservation = stock.reservations[(shipment, "X")]
    # when the warehouse reports 2 missing, and then the same total again
    assert stock.lose(reservation, 2) == 2
    assert stock.lose(reservation, 2) == 0
    # then they left on hand and reserved once, and the rest still ships
    assert (stock.level("ams", "X").on_hand, stock.level("ams", "X").reserved) == (3, 2)
    assert stock.ship(shipment) == 2
    assert (stock.level("ams", "X").on_hand, stock.level("ams", "X").reserved) == (1, 0)
