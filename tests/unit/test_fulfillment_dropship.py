"""A purchase order's life in fulfillment: suppliers' answers, what they decline, timeouts and late answers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.fulfillment import domain
from services.fulfillment.dropship import answer, as_task_status, ship_by, timed_out
from services.fulfillment.settings import FulfillmentSettings
from shared.contracts.events import ItemQuantity
from shared.reference.suppliers import Supplier

HELD = {"DS-A": 3, "DS-B": 1}
T0 = datetime(2026, 1, 9, 10, 0, tzinfo=UTC)  # a Friday


def test_an_acknowledgement_keeps_every_line_and_declines_nothing() -> None:
    decided = answer("issued", "acknowledged", HELD)
    assert decided is not None and (decided.status, decided.held, decided.declined) == ("acknowledged", HELD, {})


def test_a_rejection_declines_every_line_held() -> None:
    decided = answer("acknowledged", "rejected", HELD)
    assert decided is not None and (decided.status, decided.held, decided.declined) == ("rejected", {}, HELD)


def test_a_partial_acceptance_keeps_what_was_accepted_and_declines_the_remainder() -> None:
    decided = answer("issued", "partially_accepted", HELD, {"DS-A": 2, "DS-Z": 5})
    assert decided is not None
    assert (decided.status, decided.held, decided.declined) == (
        "partially_accepted",
        {"DS-A": 2},
        {"DS-A": 1, "DS-B": 1},
    )


def test_a_partial_acceptance_of_nothing_is_a_rejection() -> None:
    decided = answer("issued", "partially_accepted", HELD, {"DS-Z": 1})
    assert decided is not None and decided.status == "rejected" and decided.declined == HELD


def test_a_shipment_notice_ships_what_the_supplier_holds() -> None:
    decided = answer("partially_accepted", "shipped", {"DS-A": 2})
    assert decided is not None and (decided.status, decided.held, decided.declined) == ("shipped", {"DS-A": 2}, {})


@pytest.mark.parametrize("status", ["timed_out", "rejected", "shipped", "cancelled"])
@pytest.mark.parametrize("kind", ["acknowledged", "rejected", "partially_accepted", "shipped"])
def test_a_late_answer_after_the_purchase_order_ended_changes_nothing(status: str, kind: str) -> None:
    assert answer(status, kind, HELD, {"DS-A": 1}) is None


def test_a_repeated_acknowledgement_changes_nothing() -> None:
    assert answer("acknowledged", "acknowledged", HELD) is None


def test_only_an_unanswered_purchase_order_times_out_and_only_once_its_deadline_passed() -> None:
    assert timed_out("issued", T0, T0) and not timed_out("issued", T0, T0 - timedelta(seconds=1))
    assert not timed_out("acknowledged", T0, T0 + timedelta(days=1))


def test_the_ship_by_date_counts_the_suppliers_lead_time_in_business_days() -> None:
    calendar = FulfillmentSettings().shipping_rules().calendar
    supplier = Supplier("acme", "Acme", ("DS-*",), timedelta(hours=1), 2)
    assert ship_by(T0, supplier, calendar) == date(2026, 1, 13)  # Friday + 2 business days: Tuesday


def test_purchase_orders_count_as_shipments_when_an_order_is_complete() -> None:
    assert domain.order_complete([domain.SHIPPED, as_task_status("shipped"), as_task_status("timed_out")])
    assert not domain.order_complete([domain.SHIPPED, as_task_status("acknowledged")])


def test_a_cancellation_withdraws_an_open_purchase_order_and_is_refused_once_the_supplier_shipped() -> None:
    sofa = (ItemQuantity(sku="DS-A", quantity=1),)
    open_po = domain.TaskState(uuid.uuid4(), "acme", as_task_status("acknowledged"), sofa)
    withdrawn = domain.decide_cancellation([open_po], None)
    assert isinstance(withdrawn, domain.Withdraw) and withdrawn.tasks == (open_po,)
    shipped_po = domain.TaskState(uuid.uuid4(), "acme", as_task_status("shipped"), sofa)
    assert isinstance(domain.decide_cancellation([shipped_po], None), domain.Refuse)
    declined_po = domain.TaskState(uuid.uuid4(), "acme", as_task_status("rejected"), sofa)
    assert domain.decide_cancellation([declined_po], None) == domain.Withdraw(())
