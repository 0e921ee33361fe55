"""The simulator's deterministic triggers: SHORT SKUs are short-picked (by one unit, or wholly at the warehouse
a `SHORT-<warehouse>-` SKU names), EXC postal codes get a
carrier exception before delivery; the payment provider takes each key once, failing or refusing marked orders;
everything else goes as before."""

import asyncio
import uuid
from typing import Any

from deploy.local.simulator import (
    EXCEPTION_DETAIL,
    Payments,
    PickQueue,
    carrier_steps,
    picked_lines,
    supplier_answer,
    until_delivered,
)


def test_a_sku_marked_short_is_picked_one_unit_short_and_others_in_full() -> None:
    lines = [{"sku": "T-SHORT-1", "quantity": 3}, {"sku": "T-2", "quantity": 2}, {"sku": "X-SHORT", "quantity": 1}]
    assert picked_lines(lines, "ams") == [{"sku": "T-SHORT-1", "quantity": 2}, {"sku": "T-2", "quantity": 2}]
    assert picked_lines([{"sku": "T-2", "quantity": 2}], "ams") == [{"sku": "T-2", "quantity": 2}]


def test_a_sku_short_at_one_warehouse_is_missing_there_and_whole_elsewhere() -> None:
    lines = [{"sku": "SHORT-ams-1", "quantity": 3}, {"sku": "T-2", "quantity": 2}]
    assert picked_lines(lines, "ams") == [{"sku": "T-2", "quantity": 2}]
    assert picked_lines(lines, "fra") == lines


def task(name: str, created_at: str, priority: int | None = None) -> dict[str, Any]:
    return {"pick_task_id": name, "created_at": created_at, **({} if priority is None else {"priority": priority})}


def test_the_warehouse_picks_each_wave_highest_priority_first_then_in_release_order() -> None:
    # given tasks released in this order, two of them before priorities existed (no field: 0)
    queue = PickQueue()
    for released in (
        task("standard-1", "2027-02-10T09:00:00+00:00", 0),
        task("old", "2027-02-10T08:00:00+00:00"),
        task("express", "2027-02-10T09:02:00+00:00", 421),
        task("standard-2", "2027-02-10T09:01:00+00:00", 0),
        task("vip", "2027-02-10T09:03:00+00:00", 150),
    ):
        queue.add(released)

    # when the pickers start a wave, they take every task waiting, the most urgent first
    assert [t["pick_task_id"] for t in queue.wave()] == ["express", "vip", "old", "standard-1", "standard-2"]
    assert not queue and queue.wave() == []


def test_a_postal_code_starting_with_exc_gets_an_exception_before_delivery() -> None:
    assert [kind for kind, _ in carrier_steps("EXC 123")] == [
        "in_transit",
        "exception",
        "out_for_delivery",
        "delivered",
    ]
    assert dict(carrier_steps("exc-9"))["exception"] == EXCEPTION_DETAIL
    assert carrier_steps("1012 JS") == carrier_steps(None) == [("in_transit", None), ("delivered", None)]


def charge(reference: str, key: str = "exchange-charge:RMA-1") -> dict[str, Any]:
    return {"charge_id": str(uuid.uuid4()), "idempotency_key": key, "order_reference": reference, "amount": "3.50"}


def test_the_provider_takes_a_charge_once_per_key_and_answers_a_repeat_with_the_same_charge() -> None:
    charges = Payments("charge", "ch", "CHARGE-FAIL-TWICE", "CHARGE-REFUSED", "the card was declined")
    key, first = charges.answer(charge("webshop:W-1"))
    _, again = charges.answer(charge("webshop:W-1"))
    assert key == "exchange-charge:RMA-1" and first["outcome"] == again["outcome"] == "succeeded"
    assert first["provider_reference"] == again["provider_reference"] and first["provider_reference"].startswith("ch_")
    assert first["amount"] == "3.50" and "charge_id" in first and "refund_id" not in first


def test_the_provider_refuses_marked_charges_for_good_and_fails_others_twice_before_taking_them() -> None:
    charges = Payments("charge", "ch", "CHARGE-FAIL-TWICE", "CHARGE-REFUSED", "the card was declined")
    refused = [charges.answer(charge("webshop:CHARGE-REFUSED-1", "k1"))[1] for _ in range(3)]
    assert [(a["outcome"], a["retriable"], a["reason"]) for a in refused] == [
        ("failed", False, "the card was declined")
    ] * 3
    answers = [charges.answer(charge("webshop:CHARGE-FAIL-TWICE-1", "k2"))[1] for _ in range(3)]
    assert [a["outcome"] for a in answers] == ["failed", "failed", "succeeded"]
    assert answers[0]["retriable"] is True


async def test_a_report_the_broker_does_not_take_is_sent_again_until_it_does(monkeypatch: Any) -> None:
    # given a broker that times out twice (as while a killed broker comes back)
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    attempts = 0

    async def send() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise TimeoutError("no answer from the broker")

    # when the simulator sends a report, then it is sent until taken, not dropped with its task
    await until_delivered("a pick report", send)
    assert attempts == 3


def test_the_supplier_acknowledges_plain_purchase_orders() -> None:
    assert supplier_answer({"lines": [{"sku": "DS-ACME-1", "quantity": 2}]}) == ("acknowledged", None)


def test_the_supplier_rejects_a_purchase_order_with_a_line_marked_reject() -> None:
    lines = [{"sku": "DS-ACME-1", "quantity": 2}, {"sku": "DS-ACME-REJECT-2", "quantity": 1}]
    assert supplier_answer({"lines": lines}) == ("rejected", None)


def test_the_supplier_accepts_one_unit_less_of_a_line_marked_partial_and_rejects_when_nothing_is_left() -> None:
    lines = [{"sku": "DS-ACME-1", "quantity": 2}, {"sku": "DS-ACME-PARTIAL-2", "quantity": 3}]
    assert supplier_answer({"lines": lines}) == (
        "partially_accepted",
        [{"sku": "DS-ACME-1", "quantity": 2}, {"sku": "DS-ACME-PARTIAL-2", "quantity": 2}],
    )
    assert supplier_answer({"lines": [{"sku": "DS-ACME-PARTIAL-2", "quantity": 1}]}) == ("rejected", None)
