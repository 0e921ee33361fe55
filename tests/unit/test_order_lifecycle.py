"""The order's status follows the transition table; the timeline records every step with its reason."""

import itertools
import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.capture import domain, lifecycle
from services.capture.lifecycle import Progress
from shared.contracts import events as ev

# The rule, written out pair by pair: every change an order may make.
ALLOWED = {
    ("received", "validated"),
    ("received", "rejected"),
    ("received", "on_hold"),
    ("on_hold", "validated"),  # its last hold released
    ("on_hold", "cancelled"),  # cancelled from hold
    ("validated", "allocated"),
    ("validated", "backordered"),
    ("validated", "rejected"),
    ("validated", "cancelled"),
    ("backordered", "allocated"),
    ("backordered", "partially_shipped"),
    ("backordered", "rejected"),
    ("backordered", "cancelled"),
    ("allocated", "backordered"),
    ("allocated", "partially_shipped"),
    ("allocated", "shipped"),
    ("allocated", "cancelled"),
    ("partially_shipped", "shipped"),
    ("partially_shipped", "exception"),
    ("shipped", "delivered"),
    ("shipped", "exception"),
    ("exception", "delivered"),
}
PAIRS = list(itertools.product(domain.STATUSES, repeat=2))
ORDER = uuid.uuid4()
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_the_table_allows_exactly_the_listed_transitions() -> None:
    assert set(domain.TRANSITIONS) == set(domain.STATUSES)
    assert {(a, b) for a, b in PAIRS if domain.allowed(a, b)} == ALLOWED


@pytest.mark.parametrize(("current", "following"), sorted(ALLOWED))
def test_every_allowed_transition_is_taken(current: str, following: str) -> None:
    assert domain.advance(current, following) == following


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        ("shipped", "allocated"),  # a late allocation event after shipping
        ("partially_shipped", "backordered"),
        ("partially_shipped", "cancelled"),  # part has shipped: no cancelling as a whole
        ("shipped", "cancelled"),
        ("allocated", "rejected"),
        ("partially_shipped", "rejected"),
        ("exception", "shipped"),
        ("delivered", "exception"),
        ("validated", "received"),
        ("allocated", "validated"),
        ("on_hold", "allocated"),  # never announced to allocation: nothing it says moves it
        ("on_hold", "backordered"),
        ("validated", "on_hold"),
        *[(final, other) for final in ("delivered", "cancelled", "rejected") for other in domain.STATUSES],
    ],
)
def test_a_forbidden_or_backward_report_leaves_the_status(current: str, reported: str) -> None:
    assert domain.advance(current, reported) == current


def test_final_statuses_have_no_way_out() -> None:
    assert {"delivered", "cancelled", "rejected"} == domain.FINAL_STATUSES


@pytest.mark.parametrize(
    ("current", "reported"),
    [("validated", "shipped"), ("validated", "delivered"), ("backordered", "shipped"), ("allocated", "exception")],
)
def test_a_report_that_overtook_the_events_before_it_moves_forward_along_the_table(current: str, reported: str) -> None:
    assert domain.advance(current, reported) == reported


@pytest.mark.parametrize(("current", "reported"), PAIRS)
def test_the_status_never_moves_backwards(current: str, reported: str) -> None:
    after = domain.advance(current, reported)
    assert after == current or after in domain.REACHABLE[current]


def test_a_parcel_shipped_after_every_earlier_parcel_arrived_is_still_to_arrive() -> None:
    # given an order whose first parcel arrived while a unit waited for stock (as its timeline says)
    start = progress("partially_shipped", backordered={"B": 1}, shipped={"A": 2})
    arrived = lifecycle.apply(start, ev.OrderDelivered(order_id=ORDER, delivered_at=NOW))
    assert arrived is not None and arrived.progress.parcels_delivered
    # when the rest is released and ships
    released = lifecycle.apply(arrived.progress, allocated(B=1))
    assert released is not None
    sent = lifecycle.apply(released.progress, shipped(B=1))
    # then not every parcel has arrived any more (capture carries the progress from one event to the next
    # within a batch, as the timeline's latest shipping step would tell it)
    assert sent is not None and not sent.progress.parcels_delivered


# ---- events -> steps ----


def progress(status: str = "validated", **kwargs: object) -> Progress:
    return Progress(status, {"A": 2, "B": 1}, **kwargs)  # type: ignore[arg-type]


def items(**units: int) -> list[ev.ItemQuantity]:
    return [ev.ItemQuantity(sku=sku, quantity=n) for sku, n in units.items()]


def shipped(complete: bool = True, **units: int) -> ev.OrderShipped:
    return ev.OrderShipped(
        order_id=ORDER,
        pick_task_id=uuid.uuid4(),
        warehouse_id="ams",
        carrier="parcelnet",
        tracking_number="PN1",
        shipped_at=NOW,
        lines=items(**units),
        promised_delivery=date(2026, 3, 12),
        order_complete=complete,
    )


def allocated(backordered: dict[str, int] | None = None, **units: int) -> ev.OrderAllocated:
    address = ev.Address(name="n", line1="l", city="c", postal_code="1", country="NL")
    shipments = [ev.Shipment(shipment_id=uuid.uuid4(), warehouse_id="ams", lines=items(**units))] if units else []
    return ev.OrderAllocated(
        order_id=ORDER,
        shipments=shipments,
        ship_to=address,
        service_level="standard",
        backordered=items(**(backordered or {})),
        reason="nearest warehouse with every line",
    )


def test_allocation_records_the_routing_reason_and_what_waits_for_stock() -> None:
    change = lifecycle.apply(progress(), allocated({"B": 1}, A=2))
    assert change is not None
    assert change.step == lifecycle.Step(
        "allocated", "nearest warehouse with every line; ships from ams (A x2); waiting for stock: B x1", "allocated"
    )
    assert change.progress.backordered == {"B": 1}
    assert change.status_changed


def test_a_backorder_records_its_reason_and_missing_units() -> None:
    change = lifecycle.apply(progress(), ev.OrderBackordered(order_id=ORDER, reason="no stock", missing=items(A=2)))
    assert change is not None
    assert (change.step.name, change.step.detail, change.step.status) == (
        "backordered",
        "no stock; waiting for stock: A x2",
        "backordered",
    )


def test_an_unfulfillable_order_is_rejected_with_the_reason() -> None:
    change = lifecycle.apply(progress(), ev.OrderUnfulfillable(order_id=ORDER, reason="policy: reject, no stock"))
    assert change is not None
    assert change.step == lifecycle.Step("rejected", "policy: reject, no stock", "rejected")


def test_the_last_shipment_with_nothing_backordered_ships_the_order() -> None:
    change = lifecycle.apply(progress("allocated"), shipped(A=2, B=1))
    assert change is not None
    assert change.step.status == "shipped"
    assert change.step.detail == "parcelnet PN1 from ams; A x2, B x1; promised for 2026-03-12"
    assert change.progress.shipped == {"A": 2, "B": 1}


def test_a_shipment_while_others_are_open_or_units_still_backordered_ships_part_of_the_order() -> None:
    change = lifecycle.apply(progress("allocated"), shipped(complete=False, A=2))
    assert change is not None and change.step.status == "partially_shipped"
    waiting = progress("allocated", backordered={"B": 1})
    change = lifecycle.apply(waiting, shipped(complete=True, A=2))
    assert change is not None and change.step.status == "partially_shipped"


def test_a_shipment_read_before_the_allocation_that_left_units_waiting_ships_part_of_the_order() -> None:
    # given an order capture has not yet read the allocation of (it said B waits; that event is on its way)
    start = progress("validated")
    # when the shipment of A is read first (fulfillment's events travel on another topic)
    change = lifecycle.apply(start, shipped(complete=True, A=2))
    # then the order shipped in part: B has not left
    assert change is not None and change.step.status == "partially_shipped"


def test_a_backorder_released_then_shipped_completes_a_partially_shipped_order() -> None:
    start = progress("partially_shipped", backordered={"B": 1}, shipped={"A": 2})
    released = lifecycle.apply(start, allocated(B=1))
    assert released is not None
    assert released.step.status == "partially_shipped"  # a new shipment does not undo the shipped part
    assert released.progress.backordered == {}
    done = lifecycle.apply(released.progress, shipped(B=1))
    assert done is not None and done.step.status == "shipped"


def test_whole_order_cancellation_cancels_and_releases_backorders() -> None:
    change = lifecycle.apply(
        progress("backordered", backordered={"A": 2}), ev.OrderCancelled(order_id=ORDER, reason="customer request")
    )
    assert change is not None
    assert change.step == lifecycle.Step("cancelled", "customer request", "cancelled")
    assert (change.progress.cancelled, change.progress.backordered) == ({"A": 2, "B": 1}, {})


def test_partial_cancellation_is_a_step_until_every_unit_is_cancelled() -> None:
    first = lifecycle.apply(
        progress("allocated", backordered={"B": 1}),
        ev.OrderCancelled(order_id=ORDER, lines=items(B=1), reason="changed my mind"),
    )
    assert first is not None
    assert first.step == lifecycle.Step("partially_cancelled", "changed my mind; B x1", "allocated")
    assert (first.progress.cancelled, first.progress.backordered) == ({"A": 0, "B": 1}, {})
    rest = lifecycle.apply(first.progress, ev.OrderCancelled(order_id=ORDER, lines=items(A=2), reason="all"))
    assert rest is not None and rest.step.status == "cancelled"


def test_cancellation_outcomes_and_pick_task_steps_are_recorded_without_changing_the_status() -> None:
    steps = [
        ev.CancellationRefused(order_id=ORDER, reason="pick task already packed"),
        ev.CancellationAccepted(order_id=ORDER, withdrawn_shipments=[uuid.uuid4()], reason="customer request"),
        ev.PickTaskCancelled(
            pick_task_id=uuid.uuid4(), order_id=ORDER, warehouse_id="ams", reason="cancelled", cancelled_at=NOW
        ),
        ev.ShortPickReported(order_id=ORDER, shipment_id=uuid.uuid4(), warehouse_id="ams", missing=items(A=1)),
    ]
    recorded = [lifecycle.apply(progress("allocated"), payload) for payload in steps]
    assert [(c.step.name, c.step.detail, c.step.status) for c in recorded if c] == [
        ("cancellation_refused", "pick task already packed", "allocated"),
        ("cancellation_accepted", "customer request; 1 pick task(s) withdrawn", "allocated"),
        ("pick_task_withdrawn", "pick task at ams withdrawn; cancelled", "allocated"),
        ("short_picked", "ams could not pick A x1", "allocated"),
    ]


def test_a_delivery_exception_is_recorded_and_cleared_by_delivery() -> None:
    exception = ev.DeliveryException(
        order_id=ORDER,
        pick_task_id=uuid.uuid4(),
        carrier="parcelnet",
        tracking_number="PN1",
        detail="address not found",
        occurred_at=NOW,
    )
    change = lifecycle.apply(progress("shipped", shipped={"A": 2, "B": 1}), exception)
    assert change is not None
    assert change.step == lifecycle.Step("exception", "parcelnet PN1: address not found", "exception")
    delivered = lifecycle.apply(change.progress, ev.OrderDelivered(order_id=ORDER, delivered_at=NOW))
    assert delivered is not None and delivered.step.status == "delivered"


def test_parcels_delivered_while_units_still_wait_for_stock_are_a_step_and_the_order_goes_on() -> None:
    # given an order whose first parcel left while a unit waited for stock
    start = progress("partially_shipped", backordered={"B": 1}, shipped={"A": 2})
    # when fulfillment reports every parcel it shipped delivered
    arrived = lifecycle.apply(start, ev.OrderDelivered(order_id=ORDER, delivered_at=NOW))
    # then that is recorded, and the order is not delivered: a unit is still to come
    assert arrived is not None
    assert arrived.step == lifecycle.Step(
        "partially_delivered", "every parcel so far delivered; still to come: B x1", "partially_shipped"
    )
    # and once the rest is released, ships and arrives, the order is delivered
    released = lifecycle.apply(arrived.progress, allocated(B=1))
    assert released is not None
    done = lifecycle.apply(released.progress, shipped(B=1))
    assert done is not None and done.step.status == "shipped"
    delivered = lifecycle.apply(done.progress, ev.OrderDelivered(order_id=ORDER, delivered_at=NOW))
    assert delivered is not None and delivered.step.status == "delivered"


def test_cancelling_what_was_still_to_come_after_every_parcel_arrived_delivers_the_order() -> None:
    # given an order whose parcels all arrived while a unit still waited for stock
    start = progress("partially_shipped", backordered={"B": 1}, shipped={"A": 2}, parcels_delivered=True)
    # when that unit is cancelled
    change = lifecycle.apply(start, ev.OrderCancelled(order_id=ORDER, lines=items(B=1), reason="no longer needed"))
    # then the order is delivered: nothing is left to come
    assert change is not None
    assert change.step == lifecycle.Step(
        "partially_cancelled", "no longer needed; B x1; every parcel delivered", "delivered"
    )


def test_cancelling_what_is_still_to_come_before_the_parcels_arrived_ships_the_order_and_delivery_ends_it() -> None:
    start = progress("partially_shipped", backordered={"B": 1}, shipped={"A": 2})
    change = lifecycle.apply(start, ev.OrderCancelled(order_id=ORDER, lines=items(B=1), reason="no longer needed"))
    assert change is not None and change.step.status == "shipped"
    delivered = lifecycle.apply(change.progress, ev.OrderDelivered(order_id=ORDER, delivered_at=NOW))
    assert delivered is not None and delivered.step.status == "delivered"


def test_a_late_event_is_recorded_but_does_not_move_the_status_back() -> None:
    change = lifecycle.apply(progress("shipped"), allocated(A=2))
    assert change is not None
    assert (change.step.name, change.step.status, change.status_changed) == ("allocated", "shipped", False)


def test_stock_counts_are_not_about_an_order() -> None:
    count = ev.StockCountShort(warehouse_id="ams", sku="A", counted=1, reserved=2, reference="c1")
    assert lifecycle.apply(progress(), count) is None
    assert lifecycle.order_of(count) is None


# ---- any arrival order: allocation's and fulfillment's events travel on different topics ----


def delivered() -> ev.OrderDelivered:
    return ev.OrderDelivered(order_id=ORDER, delivered_at=NOW)


def backordered(**units: int) -> ev.OrderBackordered:
    return ev.OrderBackordered(order_id=ORDER, reason="waiting for stock", missing=items(**units))


# (allocation's events, fulfillment's events), each list in the order its topic carries them; fulfillment
# reacts to allocation, so in causal order each of its events comes after the allocation it follows.
STORIES: dict[str, tuple[list[ev.Contract], list[ev.Contract]]] = {
    "one shipment": ([allocated(A=2, B=1)], [shipped(A=2, B=1), delivered()]),
    "split": (
        [allocated(A=2), allocated(B=1)],
        [shipped(False, A=2), shipped(True, B=1), delivered()],
    ),
    "backorder released": (
        [backordered(A=2, B=1), allocated(A=2, B=1)],
        [shipped(A=2, B=1), delivered()],
    ),
    "part waits, then ships": (
        [allocated({"B": 1}, A=2), allocated(B=1)],
        [shipped(True, A=2), shipped(True, B=1), delivered()],
    ),
}


def final(allocation: list[ev.Contract], fulfillment: list[ev.Contract], turns: list[bool]) -> Progress:
    """Apply both topics' events, taking the next one from allocation's (True) or fulfillment's (False)."""
    queues = [list(allocation), list(fulfillment)]
    state = progress("validated")
    for turn in [*turns, *[True] * len(allocation), *[False] * len(fulfillment)]:
        queue = queues[0 if turn else 1]
        if queue:
            change = lifecycle.apply(state, queue.pop(0))
            state = change.progress if change else state
    return state


@pytest.mark.parametrize("story", STORIES)
@given(turns=st.lists(st.booleans(), max_size=10))
def test_the_order_ends_the_same_whichever_topic_is_read_first(story: str, turns: list[bool]) -> None:
    allocation, fulfillment = STORIES[story]
    in_causal_order = final(allocation, fulfillment, [True] * len(allocation))
    interleaved = final(allocation, fulfillment, turns)
    assert in_causal_order.status == "delivered"
    assert (interleaved.status, interleaved.shipped, interleaved.backordered) == (
        in_causal_order.status,
        in_causal_order.shipped,
        in_causal_order.backordered,
    )
