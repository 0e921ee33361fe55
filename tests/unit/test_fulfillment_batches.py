"""Fulfillment's pure rules over a batch of reports: each warehouse report and carrier update applied in the order
read to its task or parcel as the ones before it left it, with the outcomes the reports one by one would have."""

import uuid
from datetime import UTC, datetime, timedelta

from services.fulfillment import domain
from shared.contracts.events import CarrierReported, ItemQuantity, Package, WarehouseReported

MONDAY = datetime(2027, 2, 15, 9, 0, tzinfo=UTC)


def lines(*pairs: tuple[str, int]) -> tuple[ItemQuantity, ...]:
    return tuple(ItemQuantity(sku=s, quantity=q) for s, q in pairs)


def task(order_id: uuid.UUID, *pairs: tuple[str, int], status: str = "released") -> domain.Picking:
    return domain.Picking(uuid.uuid4(), order_id, status, lines(*pairs))


def report(t: domain.Picking, kind: str, picked: tuple[ItemQuantity, ...] | None = None) -> WarehouseReported:
    return WarehouseReported(
        pick_task_id=t.pick_task_id,
        warehouse_id="ams",
        kind=kind,
        lines=None if picked is None else list(picked),
        package=Package(weight_grams=900) if kind == "packed" else None,
        occurred_at=MONDAY,
    )


def test_a_tasks_picked_and_packed_in_one_batch_ship_it_the_packed_report_seeing_it_picked() -> None:
    # given an order with one task still released
    order_id = uuid.uuid4()
    only = task(order_id, ("A", 1))
    # when one batch brings its picked and its packed report
    picked, packed = domain.follow_reports([only], [report(only, "picked"), report(only, "packed")], {})
    # then the second found the task picked by the first, and shipped the order's only parcel
    assert (picked.found, picked.record, picked.order_complete) == ("released", "applied: picked", False)
    assert (packed.found, packed.record, packed.order_complete) == ("picked", "applied: packed", True)
    assert packed.task.status == domain.SHIPPED and packed.task.held == lines(("A", 1))


def test_a_report_repeated_in_one_batch_is_recorded_as_ignored_and_ships_nothing_twice() -> None:
    order_id = uuid.uuid4()
    only = task(order_id, ("A", 1))
    # when the warehouse's packed report comes twice in one batch (a resend, under a new id)
    first, again = domain.follow_reports([only], [report(only, "packed"), report(only, "packed")], {})
    # then the repeat finds the task packed: recorded, nothing applied
    assert (first.applied, first.record) == (True, "applied: packed")
    assert (again.applied, again.record, again.order_complete) == (False, "ignored: task packed", False)


def test_a_short_pick_then_packed_in_one_batch_reports_the_missing_units_and_ships_what_was_picked() -> None:
    order_id = uuid.uuid4()
    only = task(order_id, ("A", 3), ("B", 1))
    short, packed = domain.follow_reports(
        [only], [report(only, "short_picked", lines(("A", 2))), report(only, "packed")], {}
    )
    assert (short.record, short.missing) == ("applied: short_picked", lines(("A", 1), ("B", 1)))
    assert packed.task.held == lines(("A", 2))  # the parcel holds what the short pick held
    assert packed.order_complete


def test_a_short_pick_of_nothing_empties_the_task_and_a_packed_report_after_it_is_ignored() -> None:
    order_id = uuid.uuid4()
    only = task(order_id, ("A", 2))
    short, packed = domain.follow_reports([only], [report(only, "short_picked", ()), report(only, "packed")], {})
    assert (short.record, short.missing) == ("applied: nothing_picked", lines(("A", 2)))
    assert packed.record == "ignored: task nothing_picked"


def test_two_parcels_of_one_order_packed_in_one_batch_the_second_completes_it() -> None:
    order_id = uuid.uuid4()
    ams, fra = task(order_id, ("A", 1)), task(order_id, ("B", 1), status="picked")
    first, second = domain.follow_reports([ams, fra], [report(ams, "packed"), report(fra, "packed")], {})
    assert (first.order_complete, second.order_complete) == (False, True)


def test_an_order_with_a_purchase_order_still_open_is_not_complete_when_its_warehouse_parcel_ships() -> None:
    order_id = uuid.uuid4()
    only = task(order_id, ("A", 1))
    (packed,) = domain.follow_reports([only], [report(only, "packed")], {order_id: ["released"]})
    assert not packed.order_complete
    (alone,) = domain.follow_reports([only], [report(only, "packed")], {order_id: ["cancelled"]})
    assert alone.order_complete


# ---- carrier updates ----


def update(number: str, kind: str, at: datetime, detail: str | None = None) -> CarrierReported:
    return CarrierReported(tracking_number=number, carrier="parcelnet", kind=kind, occurred_at=at, detail=detail)


def test_in_transit_then_delivered_in_one_batch_both_move_the_parcel_and_it_ends_delivered() -> None:
    order_id = uuid.uuid4()
    updates = [update("P1", "in_transit", MONDAY), update("P1", "delivered", MONDAY + timedelta(hours=5))]
    news, moved = domain.follow_updates({"P1": domain.Parcel(order_id)}, updates, [True, True])
    assert news == [True, True]
    assert moved["P1"] == domain.Parcel(order_id, "delivered", MONDAY + timedelta(hours=5), MONDAY + timedelta(hours=5))


def test_the_same_update_twice_in_a_batch_and_news_after_delivery_change_nothing() -> None:
    order_id = uuid.uuid4()
    delivered = update("P1", "delivered", MONDAY)
    late = update("P1", "exception", MONDAY + timedelta(hours=1), "lost")
    # the second `delivered` was recorded before (not first told); the exception comes after delivery
    news, moved = domain.follow_updates(
        {"P1": domain.Parcel(order_id)}, [delivered, delivered, late], [True, False, True]
    )
    assert news == [True, False, False]
    assert moved["P1"].status == "delivered" and moved["P1"].exception_at is None


def test_an_update_older_than_the_status_is_recorded_but_does_not_move_the_status_back() -> None:
    order_id = uuid.uuid4()
    out = domain.Parcel(order_id, "out_for_delivery", MONDAY + timedelta(hours=2))
    news, moved = domain.follow_updates(
        {"P1": out}, [update("P1", "exception", MONDAY + timedelta(hours=1), "nobody home")], [True]
    )
    assert news == [True]
    assert (moved["P1"].status, moved["P1"].status_at) == ("out_for_delivery", MONDAY + timedelta(hours=2))
    assert (moved["P1"].exception_at, moved["P1"].exception_detail) == (MONDAY + timedelta(hours=1), "nobody home")


def test_the_last_delivery_of_an_order_whose_shipments_are_all_delivered_completes_it_once() -> None:
    split, waiting = uuid.uuid4(), uuid.uuid4()
    # the batch's updates: a delivery of each of `split`'s parcels, a non-delivery, one of `waiting`'s parcels
    delivering = [split, None, split, waiting]
    completing = domain.completing_deliveries(delivering, {split: [True, True], waiting: [True, False]})
    assert completing == {2}
