"""The answers of capture's order endpoints, declared in its OpenAPI document so that clients (and the API's
fuzz test) can rely on every status code and shape. Documentation only: the endpoints build their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from shared.backbone.answers import (
    AUTHENTICATED,
    OPERATOR_ONLY,
    TOO_LARGE,
    WITH_A_BODY,
    Answers,
    Declared,
    Problem,
    invalid_or,
    not_found,
    refused,
)
from shared.contracts.events import ItemQuantity


class OrderAccepted(Declared):
    """202: the order was taken in (validated or rejected by the business rules), or was known already."""

    order_id: UUID
    status: str
    duplicate: bool


class CancelAnswer(Declared):
    """202: the request was passed on to fulfillment (or was made before: `duplicate`)."""

    order_id: UUID
    status: str
    cancellation: str | None
    duplicate: bool


class CancelRefusal(Declared):
    """404 (no such order: no ids), 409 (past cancelling) or 422 (lines that do not fit the order), with reasons."""

    order_id: UUID | None
    status: str | None
    detail: str
    reasons: list[str] = Field(default_factory=list)


class ChangeAnswer(Declared):
    """202: the change was taken (`state` awaiting_payment: it waits for `to_pay`; requested: passed on to
    fulfillment), or was made before (`duplicate`, with its state now). `verdict` partly: `notes` say what it leaves."""

    order_id: UUID
    status: str
    change_id: str
    version: int = Field(description="the order's version once the change is applied")
    state: str
    verdict: str
    notes: list[str]
    total_before: str = Field(description="decimal string")
    total_after: str = Field(description="decimal string")
    to_pay: str = Field(description="decimal string: to be paid before the change goes on")
    due_back: str = Field(description="decimal string: owed back to the customer (returns refunds it once applied)")
    duplicate: bool


class ChangeView(Declared):
    """A change of the order, with the order's document before and after it."""

    change_id: str
    fingerprint: str = Field(description="what the change asks, hashed: the same change_id asking otherwise is refused")
    version: int
    state: str = Field(description="awaiting_payment, requested, accepted, applied or refused")
    verdict: str
    source: str
    reason: str
    notes: list[str]
    before: dict[str, Any]
    after: dict[str, Any]
    lines: dict[str, int]
    reduced: dict[str, int]
    reroute: bool
    total_before: str
    total_after: str
    paid_before: str
    to_pay: str
    due_back: str
    outcome: str | None
    requested_at: datetime
    resolved_at: datetime | None
    refund_state: str | None = Field(
        description="what became of the refund of `due_back`: refunded, abandoned (an operator settles it), or none yet"
    )
    refunded: str | None = Field(description="decimal string: the amount the payment provider paid back")
    refund_note: str | None = Field(description="the provider's reference of the refund, or why it was abandoned")


class TimelineStep(Declared):
    status: str
    order_status: str | None
    occurred_at: datetime
    detail: str | None


class CancelRequestView(Declared):
    lines: list[ItemQuantity] | None
    reason: str
    source: str
    state: str
    outcome: str | None
    requested_at: datetime
    resolved_at: datetime | None


class ReturnedUnits(Declared):
    asked: int
    authorised: int
    received: int


class FiredRule(Declared):
    rule: str
    score: int
    hold: str
    reason: str
    facts: dict[str, Any]


class RiskView(Declared):
    """The order's risk assessment at intake (none for a rejected or exchange order)."""

    score: int
    level: str
    recommendation: str
    rules: list[FiredRule]
    assessed_at: datetime


class HoldView(Declared):
    hold_type: str
    reason: str
    placed_by: str
    placed_at: datetime
    state: str = Field(description="held, released, cancelled (with its order) or expired (its time limit)")
    released_by: str | None
    released_at: datetime | None
    note: str | None


class OrderView(Declared):
    """The order as capture knows it: status, rejection reasons, units per SKU at each step, the timeline."""

    order_id: UUID
    channel: str
    external_id: str
    status: str
    reasons: list[str]
    received_at: datetime
    placed_at: datetime
    currency: str
    total: str = Field(description="decimal string")
    account: str | None = Field(description="the business account the order was bought on (credit limits), if any")
    paid: str = Field(description="decimal string: what was paid for the order, up front or by payments since")
    ordered: dict[str, int]
    backordered: dict[str, int]
    cancelled: dict[str, int]
    shipped: dict[str, int]
    timeline: list[TimelineStep]
    cancellations: list[CancelRequestView]
    return_status: str | None = Field(
        default=None,
        description="the state of the order's return that moved last (review, authorised, rejected,"
        " partially_received, received, closed, refunded, exchanged, exchange_failed); the order's status stays",
    )
    returned: dict[str, ReturnedUnits] = Field(
        default_factory=dict, description="per SKU: units asked back (returns not rejected), authorised, received"
    )
    refunded: str | None = Field(default=None, description="decimal string: refunds paid for returns, in all")
    original_order_id: UUID | None = Field(default=None, description="an exchange order: the order it replaces")
    risk: RiskView | None = None
    holds: list[HoldView] = Field(default_factory=list)
    version: int = Field(default=0, description="0 as taken in; one more for every change accepted")
    changes: list[ChangeView] = Field(default_factory=list)


# Every answer the order endpoints give, declared so that clients (and the API's fuzz test) can rely on it.
# FastAPI declares its own 422 (schema errors, `detail` a list) unless told otherwise; cancel adds its own.
BUSY: Answers = {
    503: {"model": Problem, "description": "The intake is busy and took nothing; send again after Retry-After"}
}
SUBMIT_ANSWERS: Answers = {202: {"model": OrderAccepted}, **AUTHENTICATED, **WITH_A_BODY, **BUSY}
NO_SUCH_ORDER = not_found("No such order")


class WebhookRefusal(Declared):
    """422: a delivery that is not an order this endpoint takes, with each reason."""

    detail: str
    reasons: list[str]


WEBHOOK_ANSWERS: Answers = {
    202: {"model": OrderAccepted},
    401: refused(Problem, "An unknown shop, or the delivery's signature is missing or wrong"),
    **TOO_LARGE,
    422: {"model": WebhookRefusal, "description": "Another topic, or a body that cannot be mapped to an order"},
    **BUSY,
}
VIEW_ANSWERS: Answers = {
    200: {"model": OrderView},
    **NO_SUCH_ORDER,
    **AUTHENTICATED,
}


CANCEL_ANSWERS: Answers = {
    202: {"model": CancelAnswer},
    404: {"model": CancelRefusal, "description": "No such order"},
    409: {"model": CancelRefusal, "description": "The order is past cancelling"},
    **invalid_or("A body that does not fit the schema, or lines that do not fit the order", CancelRefusal),
    **AUTHENTICATED,
    **WITH_A_BODY,
}
CHANGE_ANSWERS: Answers = {
    202: {"model": ChangeAnswer},
    404: {"model": CancelRefusal, "description": "No such order"},
    409: {"model": CancelRefusal, "description": "The order is past changing, or another change is under way"},
    **invalid_or(
        "A body that does not fit the schema, or a change that does not fit the order or would not pass intake",
        CancelRefusal,
    ),
    **AUTHENTICATED,
    **WITH_A_BODY,
}


class HeldOrder(Declared):
    order_id: UUID
    channel: str
    external_id: str
    received_at: datetime
    currency: str
    total: str
    score: int | None
    level: str | None
    recommendation: str | None
    holds: list[dict[str, Any]]
    held_since: datetime


class HeldOrders(Declared):
    orders: list[HeldOrder]


class OrderHolds(Declared):
    order_id: UUID
    status: str
    risk: RiskView | None
    holds: list[HoldView]


class HoldAnswer(Declared):
    """The order after the release or cancellation: its status, the holds released and those remaining."""

    order_id: UUID
    status: str
    released: list[str]
    remaining: list[str]
    holds: list[HoldView]


class HoldRefusal(Declared):
    detail: str
    reasons: list[str] = Field(default_factory=list)


HOLDS_LIST_ANSWERS: Answers = {200: {"model": HeldOrders}, **OPERATOR_ONLY}
HOLDS_ANSWERS: Answers = {200: {"model": OrderHolds}, **NO_SUCH_ORDER, **OPERATOR_ONLY}
HELD_CANCEL_ANSWERS: Answers = {
    200: {"model": HoldAnswer},
    **NO_SUCH_ORDER,
    409: {"model": HoldRefusal, "description": "The order is not on hold"},
    **OPERATOR_ONLY,
    **WITH_A_BODY,
}
RELEASE_ANSWERS: Answers = {
    **HELD_CANCEL_ANSWERS,
    **invalid_or("A body that does not fit the schema, or a hold the order does not have", HoldRefusal),
}
