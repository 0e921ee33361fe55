"""Which business counters each service moves for its outcomes; labels stay bounded (no order ids, no customers)."""

import uuid
from datetime import UTC, datetime
from types import ModuleType

import pytest
from prometheus_client import REGISTRY

from services.allocation import metrics as allocation
from services.allocation.orders import Allocated, Backordered, Cancelled, NewShipment
from services.capture import metrics as capture
from services.capture.domain import Rejection
from services.fulfillment import metrics as fulfillment
from services.notifications import metrics as notifications
from shared.contracts import events as ev


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def shipment(warehouse: str) -> NewShipment:
    return NewShipment(uuid.uuid4(), warehouse, {"A": 1})


def test_an_allocation_from_two_warehouses_counts_as_allocated_split_and_two_shipments() -> None:
    before = [value("oms_orders_allocated_total"), value("oms_orders_split_total")]
    before += [value("oms_shipments_allocated_total", warehouse=w) for w in ("ams", "fra")]
    allocation.count_outcomes([Allocated(uuid.uuid4(), (shipment("ams"), shipment("fra")), {}, "split")])
    after = [value("oms_orders_allocated_total"), value("oms_orders_split_total")]
    after += [value("oms_shipments_allocated_total", warehouse=w) for w in ("ams", "fra")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]


def test_backorders_and_cancellations_count_whole_or_partial() -> None:
    def scopes() -> list[float]:
        return [
            value("oms_orders_backordered_total", scope="partial"),
            value("oms_orders_backordered_total", scope="whole"),
            value("oms_orders_cancelled_total", scope="whole"),
            value("oms_orders_cancelled_total", scope="partial"),
        ]

    before = scopes()
    order = uuid.uuid4()
    allocation.count_outcomes(
        [
            Allocated(order, (shipment("ams"),), {"B": 2}, "partial"),
            Backordered(order, {"B": 2}, "waiting"),
            Cancelled(order, None, "whole"),
            Cancelled(order, {"A": 1}, "some"),
        ]
    )
    assert [a - b for a, b in zip(scopes(), before, strict=True)] == [1, 1, 1, 1]


def test_shipped_counts_the_order_only_with_its_last_shipment() -> None:
    def shipped(complete: bool) -> ev.OrderShipped:
        return ev.OrderShipped(
            order_id=uuid.uuid4(),
            pick_task_id=uuid.uuid4(),
            warehouse_id="ams",
            carrier="parcelnet",
            tracking_number="PN1",
            shipped_at=datetime.now(UTC),
            order_complete=complete,
        )

    before = (
        value("oms_shipments_shipped_total", warehouse="ams", carrier="parcelnet"),
        value("oms_orders_shipped_total"),
    )
    fulfillment.count_emitted(shipped(False))
    fulfillment.count_emitted(shipped(True))
    after = (
        value("oms_shipments_shipped_total", warehouse="ams", carrier="parcelnet"),
        value("oms_orders_shipped_total"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)


def test_intake_counts_the_order_and_each_rejection_by_its_kind_not_its_wording() -> None:
    before = (
        value("oms_orders_received_total", channel="pos"),
        value("oms_orders_rejected_total", channel="pos"),
        value("oms_order_rejection_reasons_total", reason="unknown_sku"),
        value("oms_order_rejection_reasons_total", reason="payment"),
    )
    reasons = [Rejection("unknown_sku", "line 1: unknown SKU payment-plan"), Rejection("payment", "payment is pending")]
    capture.count_intake("pos", reasons, "rejected")
    after = (
        value("oms_orders_received_total", channel="pos"),
        value("oms_orders_rejected_total", channel="pos"),
        value("oms_order_rejection_reasons_total", reason="unknown_sku"),
        value("oms_order_rejection_reasons_total", reason="payment"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]


@pytest.mark.parametrize("module", [capture, allocation, fulfillment, notifications])
def test_no_business_metric_is_labelled_by_an_unbounded_value(module: ModuleType) -> None:
    unbounded = {"order_id", "event_id", "email", "name", "sku", "tracking_number", "external_id", "customer"}
    for metric in vars(module).values():
        labels = getattr(metric, "_labelnames", None)
        if labels is not None:
            assert not unbounded & set(labels), metric
