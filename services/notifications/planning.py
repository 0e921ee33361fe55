"""What a message becomes once its recipient is known: its rendering, and one delivery per channel (email, and each
webhook endpoint serving the order's sales channel). Pure: no I/O."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from . import domain, messages
from .settings import WebhookEndpoint

log = logging.getLogger(__name__)
MessageKey = tuple[UUID, str, str]  # (order_id, kind, shipment_key)


def key_of(row: Mapping[str, Any] | asyncpg.Record) -> MessageKey:
    """The message a row (a message, a delivery) is about."""
    return row["order_id"], row["kind"], row["shipment_key"]


@dataclass(frozen=True)
class Waiting:
    """A message to plan: what it is about, its facts, and whom it is for (the contact's name, reference and
    sales channel)."""

    key: MessageKey
    facts: dict[str, Any]
    recipient: Mapping[str, Any]


@dataclass(frozen=True)
class Planned:
    """A message as rendered, and its deliveries: (channel, webhook body or None)."""

    key: MessageKey
    facts: dict[str, Any]
    subject: str
    text: str
    html: str
    deliveries: list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Unrenderable:
    """A message its template cannot render (a bug): set aside with the reason, so it holds up no other."""

    key: MessageKey
    facts: dict[str, Any]
    error: str


class Planner:
    def __init__(self, webhooks: Iterable[WebhookEndpoint]) -> None:
        self.webhooks = list(webhooks)

    def plan(self, waiting: Iterable[Waiting]) -> tuple[list[Planned], list[Unrenderable]]:
        planned: list[Planned] = []
        unrenderable: list[Unrenderable] = []
        for message in waiting:
            order_id, kind, shipment_key = message.key
            try:
                rendered = messages.render(kind, order_id, shipment_key, message.recipient, message.facts)
            except Exception as exc:  # a template bug must not hold up every other message
                log.error("%s of order %s cannot be rendered: %r", kind, order_id, exc)
                unrenderable.append(Unrenderable(message.key, message.facts, repr(exc)[:1000]))
                continue
            deliveries = [("email", None), *self._webhook_deliveries(message, rendered)]
            planned.append(
                Planned(message.key, message.facts, rendered.subject, rendered.text, rendered.html, deliveries)
            )
        return planned, unrenderable

    def _webhook_deliveries(self, message: Waiting, rendered: messages.Rendered) -> list[tuple[str, bytes | None]]:
        sales_channel = message.recipient["sales_channel"]
        endpoints = [e for e in self.webhooks if e.serves(sales_channel)]
        if not endpoints:
            return []
        body = domain.webhook_body(
            {
                **dict(zip(("order_id", "kind", "shipment_key"), message.key, strict=True)),
                "message_id": messages.message_id(*message.key),
                "subject": rendered.subject,
                "text": rendered.text,
                "facts": message.facts,
            },
            sales_channel,
            message.recipient["reference"],
        )
        return [(endpoint.channel, body) for endpoint in endpoints]
