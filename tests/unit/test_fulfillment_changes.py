"""Which pick tasks an order change withdraws, and when it is refused: once the warehouse has started on one."""

import uuid

from services.fulfillment.changes import decide_change
from services.fulfillment.domain import Refuse, TaskState, Withdraw
from shared.contracts.events import ItemQuantity


def task(status: str, *skus: str, warehouse: str = "ams") -> TaskState:
    return TaskState(uuid.uuid4(), warehouse, status, tuple(ItemQuantity(sku=s, quantity=1) for s in skus))


def test_a_new_ship_to_withdraws_every_open_task_and_leaves_what_left() -> None:
    a, b, gone, empty = task("released", "A"), task("released", "B"), task("packed", "C"), task("cancelled", "D")
    decision = decide_change([a, b, gone, empty], reroute=True, reduced={})
    assert isinstance(decision, Withdraw) and set(decision.tasks) == {a, b}


def test_fewer_units_withdraw_only_the_tasks_holding_them() -> None:
    a, b = task("released", "A"), task("picked", "B")
    assert decide_change([a, b], reroute=False, reduced={"A": 1}) == Withdraw((a,))
    assert decide_change([a, b], reroute=False, reduced={}) == Withdraw(())  # more units: nothing to withdraw


def test_once_the_warehouse_has_started_on_a_task_it_touches_the_change_is_refused_whole() -> None:
    a, b = task("released", "A"), task("picked", "B", warehouse="fra")
    decision = decide_change([a, b], reroute=True, reduced={})
    assert decision == Refuse(f"the warehouse has started on it: shipment {b.pick_task_id} at fra (picked)")
    short = task("short_picked", "A")
    assert isinstance(decide_change([short], reroute=False, reduced={"A": 1}), Refuse)


def test_an_order_with_a_purchase_order_out_to_a_dropship_supplier_is_not_changed() -> None:
    # a change re-routes every unit still to come to warehouses: the supplier's lines would be ordered twice
    a = task("released", "A")
    for status in ("issued", "acknowledged", "partially_accepted", "shipped"):
        decision = decide_change([a], reroute=True, reduced={}, purchase_orders=["cancelled", status])
        assert decision == Refuse("part of the order is with a dropship supplier: it cannot be changed")
    # one the supplier declined, or that was withdrawn, left its lines to the warehouses: the change goes ahead
    assert decide_change([a], reroute=True, reduced={}, purchase_orders=["rejected", "timed_out", "cancelled"]) == (
        Withdraw((a,))
    )
