"""The answers of allocation's operator views, declared in its OpenAPI document so that clients (and the API's fuzz
test) can rely on every key and its type. Documentation only: the views build their answers (from repository.py's
rows and priority.explain) and send them as built, not through these models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.backbone.answers import OPERATOR_ONLY, Answers, Declared, not_found


class PriorityComponent(Declared):
    """One reason for the order's priority: the points it adds and why, in words."""

    name: str = Field(description="service_level, cutoff, promise, tier or age (always last: earned while waiting)")
    points: int
    detail: str


class OrderPriority(Declared):
    """The order's priority now: its components, the score they add up to and the band it falls in; waiting orders
    are served by band, highest first, then first come first served."""

    order_id: UUID
    status: Literal["allocated", "backordered", "cancelled", "unfulfillable"]
    arrived_at: datetime
    score: int
    band: int
    components: list[PriorityComponent]


class StockAtWarehouse(Declared):
    """One SKU at one warehouse that stocks it."""

    warehouse_id: str
    sku: str
    on_hand: int = Field(description="units in the building")
    reserved: int = Field(description="units promised to open reservations")
    available: int = Field(description="available to promise: on hand less reserved")
    updated_at: datetime


class Stock(Declared):
    stock: list[StockAtWarehouse]
    limit: int


class ReplenishmentSuggestion(Declared):
    """A draft purchase order raised when the forecast fell below the reorder rule's minimum, with the figures it
    was raised on; a receipt naming it closes it."""

    suggestion_id: UUID
    warehouse_id: str
    sku: str
    supplier: str
    quantity: int
    forecast: int = Field(description="on hand - reserved + on order, when raised")
    on_hand: int
    reserved: int
    on_order: int
    minimum: int
    maximum: int
    pack_multiple: int
    lead_time_days: int
    expected_by: date
    status: Literal["open", "received"]
    opened_at: datetime
    received_at: datetime | None = Field(description="none while open")
    received_by: str | None = Field(description="the reference of the receipt that closed it; none while open")


class SuggestedReorderPoint(Declared):
    """For a (warehouse, SKU) with a reorder rule: the configured minimum beside the reorder point demand history
    suggests."""

    warehouse_id: str
    sku: str
    minimum: int
    suggested_reorder_point: int
    average_daily_demand: float = Field(description="units a day over the days of history, to 2 places")
    days_of_history: int = Field(
        description="days the average is over: the window, or fewer since the SKU was first demanded here"
    )
    lead_time_days: int
    supplier: str


class Replenishment(Declared):
    suggestions: list[ReplenishmentSuggestion]
    reorder_points: list[SuggestedReorderPoint]
    demand_window_days: int
    service_factor: float = Field(description="standard deviations of daily demand kept as a safety margin")


PRIORITY_ANSWERS: Answers = {
    200: {"model": OrderPriority},
    **not_found("An order allocation has not taken"),
    **OPERATOR_ONLY,
}
STOCK_ANSWERS: Answers = {200: {"model": Stock}, **OPERATOR_ONLY}
REPLENISHMENT_ANSWERS: Answers = {200: {"model": Replenishment}, **OPERATOR_ONLY}
