"""The KPI report's shape, declared in KPIs' OpenAPI document so that clients (and the API's fuzz test) can rely on
every figure and its type. Documentation only: Reporting.report builds the answer (domain.grouped each group) and
docs/kpis.md defines each figure. Rates are shares from 0 to 1 rounded to 4 places, null when nothing is counted;
money is a decimal string to the cent."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.backbone.answers import OPERATOR_ONLY, Answers, Declared

Rate = float | None


class OrderCounts(Declared):
    placed: int
    rejected: int = Field(description="refused at intake in the period (by when refused)")
    delivered: int
    cancelled: int = Field(description="cancelled whole, or from hold")
    open: int = Field(description="neither delivered nor cancelled")


class PerfectOrderComponents(Declared):
    """Each component's rate over the orders delivered."""

    on_time: Rate = Field(description="delivered no later than the latest promised date plus the tolerance")
    in_full: Rate = Field(description="shipped what the order holds as last changed, less what the customer cancelled")
    damage_free: Rate = Field(description="no return authorised for a damage reason")
    correct_documents: Rate = Field(description="no delivery exception about the address or documents")


class PerfectOrder(Declared):
    orders: int = Field(description="orders delivered: those the rates are over")
    components: PerfectOrderComponents
    rate_product_of_components: Rate = Field(description="APQC: the product of the four component rates")
    rate_all_four: Rate = Field(description="SCOR: the share of orders meeting all four")


class Durations(Declared):
    """Nearest-rank percentiles of the orders that got there (null with none)."""

    orders: int
    p50_seconds: float | None
    p90_seconds: float | None


class CycleTimes(Declared):
    internal: Durations = Field(description="placed to ready to ship (the last shipment packed)")
    total: Durations = Field(description="placed to delivered")


class FillRates(Declared):
    """First time: from the first allocation decision, before any backorder is released or a short pick re-routed."""

    orders: int = Field(description="orders allocation has decided on")
    line: Rate = Field(description="lines reserved in full / lines")
    unit: Rate = Field(description="units reserved / units ordered")
    order: Rate = Field(description="orders reserved in full / orders")


class OnTimeDelivery(Declared):
    orders: int = Field(description="orders delivered")
    rate: Rate = Field(description="the perfect order's on-time component")
    tolerance_days: int = Field(description="days a delivery may come after the promised date and still be on time")


class BackorderRate(Declared):
    lines: int = Field(description="lines the first allocation decided on")
    backordered: int = Field(description="lines not reserved in full (an unfulfillable order's are unfilled)")
    rate: Rate


class ReturnRate(Declared):
    delivered: int
    returned: int = Field(description="delivered orders with an authorised return")
    rate: Rate


class Holds(Declared):
    held: int = Field(description="orders placed in the period that were held")
    on_hold: int = Field(description="of those, still on hold")
    hold_time: Durations = Field(description="held to released or cancelled")


class OrderChanges(Declared):
    requested: int = Field(description="changes capture passed on")
    applied: int
    refused: int = Field(description="by fulfillment: the warehouse had started")
    orders_changed: int = Field(description="orders with a change applied")
    due_back: dict[str, str] = Field(description="per currency: what the applied changes made due back")
    refunded: dict[str, str] = Field(description="per currency: what of it the payment provider paid back")


class CostPerOrder(Declared):
    orders: int = Field(description="shipped orders priced")
    unpriced: int = Field(description="shipped orders with a shipment the rate table cannot price (not guessed)")
    amount: str | None = Field(description="the average over the orders priced, in the report's `currency`")


class KpiGroup(Declared):
    """Every KPI over the group's orders placed in the period."""

    group: str = Field(description="`all`, or the channel with `by=channel`")
    orders: OrderCounts
    perfect_order: PerfectOrder
    cycle_time: CycleTimes
    fill_rate: FillRates
    on_time_delivery: OnTimeDelivery
    backorder_rate: BackorderRate
    return_rate: ReturnRate
    holds: Holds
    changes: OrderChanges
    cost_per_order: CostPerOrder


class KpiReport(Declared):
    """The KPIs of the orders placed in [since, until)."""

    since: datetime
    until: datetime
    by: Literal["channel"] | None
    currency: str = Field(description="the cost model's currency: that of `cost_per_order.amount`")
    groups: list[KpiGroup] = Field(
        description="one for all the orders; with `by=channel`, one per channel with an order placed or refused"
        " (none for none), by name"
    )


KPIS_ANSWERS: Answers = {200: {"model": KpiReport}, **OPERATOR_ONLY}
