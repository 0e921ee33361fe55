"""Which lifecycle events become which customer messages, and how a message reads. Pure: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any
from uuid import UUID

from shared import events as ev

TEMPLATES = Path(__file__).resolve().parent / "templates"
MESSAGE_ID_NAMESPACE = UUID("3c3f1a0e-7f43-4d55-8a0b-5f1e9d2c6b77")


@dataclass(frozen=True)
class Intent:
    """A message to send: its kind and the facts the template needs (no contact details)."""

    order_id: UUID
    kind: str
    facts: dict[str, Any]


@dataclass(frozen=True)
class Email:
    subject: str
    body: str
    message_id: str


def intent_for(payload: ev.Contract) -> Intent | None:
    match payload:
        case ev.OrderValidated(order_id=order_id, total=total, currency=currency, external_id=reference):
            return Intent(order_id, "confirmed", {"reference": reference, "total": f"{total} {currency}"})
        case ev.OrderRejected(order_id=order_id, reasons=reasons, external_id=reference):
            return Intent(
                order_id,
                "rejected",
                {"reference": reference, "reasons": "\n".join(f"- {r}" for r in reasons)},
            )
        case ev.OrderShipped(order_id=order_id, carrier=carrier, tracking_number=tracking):
            return Intent(order_id, "shipped", {"carrier": carrier, "tracking_number": tracking})
        case ev.OrderDelivered(order_id=order_id, delivered_at=delivered_at):
            return Intent(order_id, "delivered", {"delivered_at": delivered_at.strftime("%Y-%m-%d %H:%M UTC")})
    return None


def render(kind: str, order_id: UUID, name: str, facts: dict[str, Any]) -> Email:
    """Subject on the template's first line, body after it."""
    text = Template((TEMPLATES / f"{kind}.txt").read_text()).safe_substitute(
        {**facts, "name": name, "order_id": str(order_id)}
    )
    subject, _, body = text.partition("\n")
    # A stable Message-ID lets mail systems drop the rare resend after a crash between SMTP and our commit.
    message_id = f"<{uuid.uuid5(MESSAGE_ID_NAMESPACE, f'{order_id}/{kind}')}@oms.local>"
    return Email(subject.strip(), body.lstrip("\n"), message_id)
