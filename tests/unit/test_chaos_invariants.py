"""The chaos run's invariant checks over small hand-made evidence: each passes what is right and reports exactly
what is wrong (a check that cannot fail proves nothing)."""

from deploy.chaos import invariants
from deploy.chaos.evidence import (
    AllocationOrder,
    CaptureOrder,
    DeadLetter,
    Mail,
    Message,
    PickTask,
    PickTaskRecord,
    Reservation,
    StockRow,
)
from deploy.chaos.invariants import Accepted, Poison

# ---- 1. orders: final, or waiting with its reason for exactly the missing units ----


def reservation(order: str, sku: str, quantity: int, status: str, short: int = 0, shipment: str = "s1") -> Reservation:
    return Reservation(order, shipment, "ams", sku, quantity, short, status)


def check_orders(capture: CaptureOrder, booking: AllocationOrder | None, held: list[Reservation]) -> list[str]:
    found = invariants.orders_final_or_waiting(
        [Accepted(capture.channel, capture.external_id, capture.order_id)],
        [capture],
        [booking] if booking else [],
        held,
    )
    return [v.detail for v in found.violations]


def test_a_delivered_order_whose_units_all_shipped_is_final() -> None:
    booking = AllocationOrder("o1", "allocated", {"A": 2}, {}, {}, "one shipment")
    assert (
        check_orders(CaptureOrder("o1", "web", "e1", "delivered"), booking, [reservation("o1", "A", 2, "shipped")])
        == []
    )


def test_an_order_left_allocated_is_reported_neither_final_nor_waiting() -> None:
    booking = AllocationOrder("o1", "allocated", {"A": 2}, {}, {}, "one shipment")
    [problem] = check_orders(CaptureOrder("o1", "web", "e1", "allocated"), booking, [reservation("o1", "A", 2, "open")])
    assert "neither final nor waiting" in problem


def test_a_waiting_order_must_wait_for_exactly_its_missing_units_with_a_reason() -> None:
    capture = CaptureOrder("o1", "web", "e1", "backordered")
    right = AllocationOrder("o1", "backordered", {"A": 3}, {"A": 2}, {}, "waiting for A")
    assert check_orders(capture, right, [reservation("o1", "A", 1, "shipped")]) == []
    wrong_units = AllocationOrder("o1", "backordered", {"A": 3}, {"A": 1}, {}, "waiting for A")
    [problem] = check_orders(capture, wrong_units, [reservation("o1", "A", 1, "shipped")])
    assert problem.startswith("A: 3 ordered, but 0 cancelled + 1 waiting + 1 reserved or shipped = 2")
    no_reason = AllocationOrder("o1", "backordered", {"A": 3}, {"A": 2}, {}, " ")
    assert check_orders(capture, no_reason, [reservation("o1", "A", 1, "shipped")]) == [
        "capture backordered, allocation backordered: waiting without a reason"
    ]


def test_a_delivered_order_allocation_still_holds_units_for_is_reported() -> None:
    booking = AllocationOrder("o1", "backordered", {"A": 2}, {"A": 1}, {}, "waiting")
    [problem] = check_orders(
        CaptureOrder("o1", "web", "e1", "delivered"), booking, [reservation("o1", "A", 1, "shipped")]
    )
    assert problem.endswith("delivered with units waiting")


def test_an_accepted_order_capture_does_not_know_is_lost() -> None:
    found = invariants.orders_final_or_waiting([Accepted("marketplace", "e9", None, "single")], [], [], [])
    assert [(v.subject, v.detail) for v in found.violations] == [
        ("marketplace:e9 (single)", "accepted, but capture has no such order (lost)")
    ]


# ---- 2. stock ----


def check_stock(
    row: StockRow, received: int, held: list[Reservation], in_parcels: int, over: bool = False
) -> list[str]:
    capture = [CaptureOrder("o1", "web", "e1", "cancelled" if over else "allocated")]
    found = invariants.stock_balances([row], {("ams", "A"): received}, held, {("ams", "A"): in_parcels}, capture, [])
    return [v.detail for v in found.violations]


def test_stock_that_balances_passes() -> None:
    held = [reservation("o1", "A", 3, "shipped", short=1), reservation("o1", "A", 2, "open", shipment="s2")]
    assert check_stock(StockRow("ams", "A", 7, 2), 10, held, 2) == []


def test_on_hand_not_explained_by_receipts_shipments_and_short_picks_is_reported() -> None:
    held = [reservation("o1", "A", 3, "shipped")]
    assert check_stock(StockRow("ams", "A", 8, 0), 10, held, 3) == [
        "on hand 8, but 10 received - 3 shipped - 0 lost = 7"
    ]


def test_reserved_that_differs_from_the_open_reservations_or_exceeds_on_hand_is_reported() -> None:
    held = [reservation("o1", "A", 2, "open")]
    assert check_stock(StockRow("ams", "A", 1, 3), 1, held, 0) == [
        "reserved 3, but open reservations hold 2",
        "on hand 1, reserved 3: negative or oversold",
    ]


def test_units_reserved_for_an_order_that_is_over_are_leaked() -> None:
    held = [reservation("o1", "A", 2, "open")]
    assert check_stock(StockRow("ams", "A", 5, 2), 5, held, 0, over=True) == [
        "2 units reserved for orders that are over (leaked)"
    ]


def test_parcels_that_carried_other_units_than_allocation_booked_are_reported() -> None:
    held = [reservation("o1", "A", 2, "shipped")]
    assert check_stock(StockRow("ams", "A", 3, 0), 5, held, 3) == ["2 units booked shipped, but 3 left in parcels"]


def test_a_receipt_allocation_has_no_stock_row_for_is_reported() -> None:
    found = invariants.stock_balances([], {("fra", "B"): 4}, [], {}, [], [])
    assert [(v.subject, v.detail) for v in found.violations] == [
        ("fra/B", "4 units received, but allocation has no stock row")
    ]


# ---- 3. pick tasks ----


def record(kind: str, task: str, offset: int) -> PickTaskRecord:
    return PickTaskRecord(kind, task, "o1", (0, offset))


def test_every_task_seen_and_none_withdrawn_then_shipped_passes_and_republished_ones_are_counted() -> None:
    tasks = [PickTask("t1", "o1", "ams", "packed", True), PickTask("t2", "o1", "fra", "cancelled", False)]
    published = [record("PickTaskReleased", "t1", 1), record("PickTaskReleased", "t1", 2)]
    found = invariants.pick_tasks_seen(tasks, published)
    assert found.violations == []
    assert found.counts["republished"] == 1 and found.counts["born withdrawn (never sent)"] == 1


def test_a_task_withdrawn_then_shipped_is_reported() -> None:
    tasks = [PickTask("t1", "o1", "ams", "packed", True)]
    published = [record("PickTaskReleased", "t1", 1), record("PickTaskCancelled", "t1", 2)]
    [violation] = invariants.pick_tasks_seen(tasks, published).violations
    assert (violation.subject, violation.detail) == ("t1", "withdrawn, then shipped (status packed)")


def test_a_task_the_warehouses_never_saw_or_one_fulfillment_lacks_is_reported() -> None:
    tasks = [PickTask("t1", "o1", "ams", "released", False)]
    published = [record("PickTaskReleased", "t9", 1)]
    found = invariants.pick_tasks_seen(tasks, published)
    assert [(v.subject, v.detail) for v in found.violations] == [
        ("t1", "status released, but never published to the warehouse"),
        ("t9", "published to the warehouse, but fulfillment has no such task"),
    ]


# ---- 4. mail ----


def test_one_mail_per_message_sent_passes() -> None:
    messages = [Message("o1", "confirmed", "", "sent"), Message("o1", "delivered", "", "sent")]
    mails = [Mail("o1", "confirmed", "", "<1>"), Mail("o1", "delivered", "", "<2>")]
    found = invariants.one_mail_each(messages, mails, [CaptureOrder("o1", "web", "e1", "delivered")])
    assert found.violations == []


def test_a_duplicate_a_missing_and_an_unexpected_mail_are_reported() -> None:
    messages = [
        Message("o1", "confirmed", "", "sent"),
        Message("o1", "shipped", "s1", "sent"),
        Message("o1", "delivered", "", "pending"),
    ]
    mails = [Mail("o1", "confirmed", "", "<1>"), Mail("o1", "confirmed", "", "<1>"), Mail("o1", "rejected", "", "<3>")]
    found = invariants.one_mail_each(messages, mails, [CaptureOrder("o1", "web", "e1", "delivered")])
    assert sorted((v.subject, v.detail) for v in found.violations) == [
        ("o1/confirmed", "sent, and 2 in the mailbox"),
        ("o1/delivered", "email delivery pending, not sent"),
        ("o1/rejected", "1 in the mailbox, but no such message was sent"),
        ("o1/shipped/s1", "sent, and 0 in the mailbox"),
    ]


def test_an_order_never_told_what_became_of_it_is_reported() -> None:
    found = invariants.one_mail_each([], [], [CaptureOrder("o1", "web", "e1", "cancelled")])
    assert [v.detail for v in found.violations] == [
        "cancelled, but no confirmed message",
        "cancelled, but no cancelled message",
    ]


# ---- 5. dead letters ----

POISON = Poison("poison-1", "oms.orders.submitted", "not JSON", ("capture",))


def letter(key: str | None, reason: str, service: str = "capture") -> DeadLetter:
    return DeadLetter(service, key, reason, "oms.orders.submitted[0]@7")


def test_only_the_poison_dead_lettered_with_its_reason_passes_and_repeats_are_counted() -> None:
    letters = [letter("poison-1", "not JSON: JSONDecodeError at position 0")] * 2
    found = invariants.only_poison_dead_lettered(letters, [POISON])
    assert found.violations == [] and found.counts["poison dead-lettered again (redelivered)"] == 1


def test_a_real_record_dead_lettered_a_wrong_reason_and_a_missing_poison_are_reported() -> None:
    letters = [letter("webshop:e1", "handler failed: DeadlockDetectedError (contention persisted)")]
    letters.append(letter("poison-1", "schema: channel: Field required", service="allocation"))
    found = invariants.only_poison_dead_lettered(letters, [POISON])
    assert [(v.subject, v.detail) for v in found.violations] == [
        (
            "capture: oms.orders.submitted[0]@7",
            "dead-lettered, but not injected poison (key 'webshop:e1'): handler failed: DeadlockDetectedError"
            " (contention persisted)",
        ),
        ("allocation: oms.orders.submitted[0]@7", "reason 'schema: channel: Field required', expected 'not JSON'..."),
        ("allocation: oms.orders.submitted[0]@7", "set aside by allocation, which does not read oms.orders.submitted"),
        ("capture: poison-1", "poison on oms.orders.submitted never dead-lettered"),
    ]
