"""The answer of notifications' operator view, declared in its OpenAPI document so that clients (and the API's fuzz
test) can rely on every key and its type. Documentation only: the view sends the rows repository.py reads as
built, not through these models. Kinds, states and times only: neither the recipient's address nor the text."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.backbone.answers import OPERATOR_ONLY, Answers, Declared


class MessageDelivery(Declared):
    """A message of the order and its delivery on one channel: one row per channel it goes to; a pending email
    until it is planned."""

    kind: str = Field(
        description="what it tells the customer, e.g. confirmed, shipped, delivered, cancelled or refunded"
    )
    shipment_key: str = Field(
        description="what of the order it is about, one message per (kind, key): the shipment, return, refund,"
        " cancelled lines or version; empty for a message about the order as a whole"
    )
    created_at: datetime
    channel: str = Field(description="email, or webhook:<endpoint name>")
    status: Literal["pending", "sent", "failed", "undeliverable"] = Field(
        description="failed: given up after its retries; undeliverable: set aside at once, it cannot succeed as"
        " things stand (last_error says why)"
    )
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class OrderMessages(Declared):
    order_id: UUID
    messages: list[MessageDelivery]


MESSAGES_ANSWERS: Answers = {200: {"model": OrderMessages}, **OPERATOR_ONLY}
