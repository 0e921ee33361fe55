"""The answers of returns' endpoints, declared in its OpenAPI document so that clients (and the API's fuzz test) can
rely on every status code and shape. Documentation only: the repository builds the answers; `extra="forbid"` makes
the fuzz test report a key the document does not declare."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.backbone.answers import Declared
from shared.contracts.events import Resolution

from .domain import Status

DECIMAL = "decimal string"


class ReturnLineView(Declared):
    sku: str
    quantity: int = Field(description="units asked back")
    reason: str = Field(description="the reason code given for them")
    received: int = Field(description="units the warehouse received of them so far")


class ExchangeLineView(Declared):
    """A line the customer wants instead, at the price the channel gave."""

    sku: str
    quantity: int
    unit_price: str = Field(description=DECIMAL)


class LabelView(Declared):
    """The prepaid label back to the receiving warehouse."""

    carrier: str
    service: str
    warehouse_id: str
    weight_grams: int
    price: str = Field(description=DECIMAL)


class Payment(Declared):
    """A payment asked of the payment provider, as it stands."""

    idempotency_key: str = Field(description="the key the provider knows the payment by: a retry never pays twice")
    amount: str = Field(description=DECIMAL)
    currency: str
    status: Literal["requested", "succeeded", "abandoned"]
    attempts: int
    last_error: str | None
    provider_reference: str | None
    requested_at: datetime
    settled_at: datetime | None


class RefundOfReturn(Payment):
    refund_id: UUID
    explanation: list[str] = Field(description="how the amount was worked out, line by line")


class ChargeView(Payment):
    """The difference an exchange costs more than the units returned, charged to the customer."""

    charge_id: UUID


class ExchangeView(Declared):
    exchange_id: UUID
    credit: str = Field(description=f"{DECIMAL}: what the returned units are worth")
    difference: str = Field(description=f"{DECIMAL}: what the replacement costs more (negative: less)")
    status: Literal["charging", "ordered", "charge_failed"]


class ReceivedUnitsView(Declared):
    """Units a warehouse reported received on the return's RMA."""

    warehouse_id: str
    receipt: str
    sku: str
    disposition: Literal["restock", "quarantine", "refurbish", "scrap"]
    expected: bool = Field(description="false: units the return did not ask back (kept apart, not refunded)")
    quantity: int
    received_at: datetime


class ReturnSummary(Declared):
    """A return: what was asked back and why, the policy's decision, its RMA and label once authorised."""

    return_id: UUID
    order_id: UUID
    status: Status
    resolution: Resolution
    exchange_for: list[ExchangeLineView] | None
    reasons: list[str] = Field(description="why the policy sent it to review or rejected it")
    rma: str | None = Field(description="the return authorisation, once authorised")
    warehouse_id: str | None = Field(description="the warehouse that takes the parcel back")
    label: LabelView | None
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    expires_at: datetime | None = Field(description="when the RMA lapses if nothing arrived")
    closed_at: datetime | None
    lines: list[ReturnLineView]


class ReturnView(ReturnSummary):
    """The return as it stands, with its refunds, charges, exchange and the units received."""

    refunds: list[RefundOfReturn]
    charges: list[ChargeView]
    exchange: ExchangeView | None
    received_units: list[ReceivedUnitsView]


class ReturnAnswer(ReturnView):
    duplicate: bool = Field(description="a repeat of a request (the same request_id), answered as the first")


class ReturnsOfOrder(Declared):
    order_id: UUID
    returns: list[ReturnSummary]


class Returns(Declared):
    returns: list[ReturnSummary] = Field(description="the newest first")


class RefundOfOrder(RefundOfReturn):
    """A refund of a return's units (`return_id`) or of an order change that lowered the total (`change_id`)."""

    return_id: UUID | None
    change_id: str | None


class RefundsOfOrder(Declared):
    order_id: UUID
    refunds: list[RefundOfOrder] = Field(description="the oldest first")


class ReturnRate(Declared):
    """Units received back on their RMA per unit shipped, for a channel or a SKU (whichever was asked `by`)."""

    channel: str | None = None
    sku: str | None = None
    shipped: int
    returned: int
    rate: float


class ReturnRates(Declared):
    by: Literal["channel", "sku"]
    rates: list[ReturnRate] = Field(description="the highest rate first")
