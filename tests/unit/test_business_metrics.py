"""Which business counters an emitted event moves; labels stay bounded (no order ids, no customers)."""

import uuid
from typing import Any

from shared import metrics_business as m


def moved(event_type: str, payload: dict[str, Any]) -> list[Any]:
    return list(m.emitted_increments(event_type, payload))


def shipment(warehouse: str) -> dict[str, Any]:
    return {"shipment_id": str(uuid.uuid4()), "warehouse_id": warehouse, "lines": [{"sku": "A", "quantity": 1}]}


def test_an_allocation_from_two_warehouses_counts_as_allocated_split_and_two_shipments() -> None:
    counted = moved("OrderAllocated", {"order_id": str(uuid.uuid4()), "shipments": [shipment("ams"), shipment("fra")]})
    assert counted == [
        m.ORDERS_ALLOCATED,
        m.SHIPMENTS_ALLOCATED.labels("ams"),
        m.SHIPMENTS_ALLOCATED.labels("fra"),
        m.ORDERS_SPLIT,
    ]


def test_an_allocation_with_lines_left_waiting_counts_a_partial_backorder() -> None:
    counted = moved("OrderAllocated", {"shipments": [shipment("ams")], "backordered": [{"sku": "B", "quantity": 2}]})
    assert m.ORDERS_BACKORDERED.labels("partial") in counted and m.ORDERS_SPLIT not in counted


def test_shipped_counts_the_order_only_with_its_last_shipment() -> None:
    first = moved("OrderShipped", {"warehouse_id": "ams", "carrier": "parcelnet", "order_complete": False})
    last = moved("OrderShipped", {"warehouse_id": "fra", "carrier": "parcelnet", "order_complete": True})
    assert first == [m.SHIPMENTS_SHIPPED.labels("ams", "parcelnet")]
    assert last == [m.SHIPMENTS_SHIPPED.labels("fra", "parcelnet"), m.ORDERS_SHIPPED]


def test_each_lifecycle_event_moves_its_counter() -> None:
    assert moved("OrderValidated", {"channel": "webshop"}) == [m.ORDERS_VALIDATED.labels("webshop")]
    assert moved("OrderRejected", {"channel": "pos"}) == [m.ORDERS_REJECTED.labels("pos")]
    assert moved("OrderBackordered", {}) == [m.ORDERS_BACKORDERED.labels("whole")]
    assert moved("OrderDelivered", {}) == [m.ORDERS_DELIVERED]
    assert moved("OrderCancelled", {"lines": None}) == [m.ORDERS_CANCELLED.labels("whole")]
    assert moved("OrderCancelled", {"lines": [{"sku": "A", "quantity": 1}]}) == [m.ORDERS_CANCELLED.labels("partial")]
    assert moved("PickTaskReleased", {"order_id": str(uuid.uuid4())}) == []


def test_no_business_metric_is_labelled_by_an_unbounded_value() -> None:
    unbounded = {"order_id", "event_id", "email", "name", "sku", "tracking_number", "external_id", "customer"}
    for metric in vars(m).values():
        labels = getattr(metric, "_labelnames", None)
        if labels is not None:
            assert not unbounded & set(labels), metric
