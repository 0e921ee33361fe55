"""The answers of fulfillment's operator views, declared in its OpenAPI document so that clients (and the API's fuzz
test) can rely on every key and its type. Documentation only: the views send the rows repository.py and
dropship_repository.py read as built, not through these models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.backbone.answers import OPERATOR_ONLY, Answers, Declared
from shared.contracts.events import ItemQuantity


class PickTaskShipment(Declared):
    """A pick task of the order (what one warehouse ships of it) with its shipment once packed: the shipment's
    keys are none until then."""

    pick_task_id: UUID = Field(description="the shipment id allocation gave it")
    warehouse_id: str
    status: Literal["released", "picked", "short_picked", "nothing_picked", "packed", "cancelled"]
    service_level: str = Field(description="standard, express or overnight")
    priority: int = Field(description="the order's priority score when its units were reserved: picked highest first")
    lines: list[ItemQuantity] = Field(description="the units released to the warehouse")
    created_at: datetime
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    last_carrier_status: str | None = Field(
        description="the carrier's latest update: in_transit, out_for_delivery, delivered or exception"
    )


class OrderShipments(Declared):
    order_id: UUID
    shipments: list[PickTaskShipment]


class OpenPurchaseOrder(Declared):
    """A purchase order still with its dropship supplier: issued, acknowledged or partly accepted, not shipped."""

    purchase_order_id: UUID
    order_id: UUID
    supplier_id: str
    lines: list[ItemQuantity] = Field(description="the units the supplier still holds (less what it declined)")
    status: Literal["issued", "acknowledged", "partially_accepted"]
    issued_at: datetime
    answer_by: datetime = Field(description="unanswered by then, it times out and its units go back to allocation")
    ship_by: date


class OpenPurchaseOrders(Declared):
    purchase_orders: list[OpenPurchaseOrder]


SHIPMENTS_ANSWERS: Answers = {200: {"model": OrderShipments}, **OPERATOR_ONLY}
PURCHASE_ORDERS_ANSWERS: Answers = {200: {"model": OpenPurchaseOrders}, **OPERATOR_ONLY}
