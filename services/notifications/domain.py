"""Which lifecycle events become which customer messages, how a webhook notification is signed, and how
failed deliveries back off. Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.contracts import events as ev
from shared.contracts.backorders import Quantities, backordered_after, quantities

KINDS = (
    "confirmed",
    "backordered",
    "partially_shipped",
    "shipped",
    "delivered",
    "cancelled",
    "delivery_exception",
    "rejected",
    "return_authorised",
    "return_rejected",
    "return_received",
    "return_closed",
    "refunded",
    "exchange_failed",
    "change_refunded",
    "hold_cancelled",
    "changed",
)


@dataclass(frozen=True)
class Intent:
    """A message to send: its kind, what it is about, and the facts the templates need (no contact details).

    `shipment_key` names the shipment a shipment-level message is about ('' for order-level messages; a
    partial cancellation is keyed by the lines it cancelled), so there is one message per (order, kind, key)."""

    order_id: UUID
    kind: str
    facts: dict[str, Any]
    shipment_key: str = ""


# The events notifications follows: who the customer is (validated, rejected, cancelled while on hold: never
# announced), what still waits for stock, and every step the customer is told of.
FOLLOWED: tuple[type[ev.Contract], ...] = (
    ev.OrderValidated,
    ev.OrderRejected,
    ev.HeldOrderCancelled,
    ev.OrderAllocated,
    ev.OrderBackordered,
    ev.OrderUnfulfillable,
    ev.OrderCancelled,
    ev.OrderShipped,
    ev.DeliveryException,
    ev.OrderDelivered,
    ev.ReturnAuthorised,
    ev.ReturnUnderReview,
    ev.ReturnRejected,
    ev.ReturnReceived,
    ev.ReturnClosed,
    ev.ReturnRefunded,
    ev.ExchangeChargeFailed,
    ev.OrderChanged,
    ev.ChangeRefunded,
)


def orders_of(payloads: Iterable[ev.Contract]) -> set[UUID]:
    """The orders the events are about (stock counts and the like concern no customer)."""
    return {order_id for payload in payloads if (order_id := getattr(payload, "order_id", None)) is not None}


def messages_for(
    payloads: Iterable[ev.Contract], backordered: Mapping[UUID, Quantities]
) -> tuple[dict[UUID, Quantities], list[Intent]]:
    """The events in the order read, each order's backordered units carried from one to the next: what waits for
    stock afterwards, for the orders where that changed, and the messages to send. `backordered`: what waited
    before (orders with nothing waiting may be left out)."""
    waiting = dict(backordered)
    changed: dict[UUID, Quantities] = {}
    intents: list[Intent] = []
    for payload in payloads:
        order_id = getattr(payload, "order_id", None)
        if order_id is None:
            continue
        after = backordered_after(waiting.get(order_id, {}), payload)
        if after is not None:
            waiting[order_id] = changed[order_id] = after
        intent = intent_for(payload, waiting.get(order_id, {}))
        if intent is not None:
            intents.append(intent)
    return changed, intents


def intent_for(payload: ev.Contract, backordered: Mapping[str, int]) -> Intent | None:
    """`backordered`: what of the order still waits for stock once this event is taken into account."""
    match payload:
        case ev.OrderValidated(order_id=order_id, total=total, currency=currency, lines=lines):
            return Intent(order_id, "confirmed", {"total": f"{total} {currency}", "items": _items(lines)})
        case ev.OrderRejected(order_id=order_id, reasons=reasons):
            return Intent(order_id, "rejected", {"reasons": list(reasons)})
        case ev.HeldOrderCancelled(order_id=order_id, reason=reason, expired=expired):
            # Never which checks held it: the customer is told it is cancelled, and why in the words given.
            return Intent(order_id, "hold_cancelled", {"reason": reason, "expired": expired})
        case ev.OrderUnfulfillable(order_id=order_id, reason=reason):
            return Intent(order_id, "rejected", {"reasons": [reason]})
        case ev.OrderBackordered(order_id=order_id) | ev.OrderAllocated(order_id=order_id) if backordered:
            return Intent(order_id, "backordered", {"items": _items_of(backordered)})
        case ev.OrderShipped():
            return _shipped(payload, backordered)
        case ev.OrderChanged():
            return _changed(payload)
        case ev.ChangeRefunded(order_id=order_id, refund_id=refund_id, amount=amount, currency=currency):
            facts = {"amount": f"{amount:.2f} {currency}", "explanation": list(payload.explanation)}
            return Intent(order_id, "change_refunded", facts, str(refund_id))
        case ev.DeliveryException(order_id=order_id, pick_task_id=shipment, carrier=carrier, detail=detail):
            facts = {"carrier": carrier, "tracking_number": payload.tracking_number, "detail": detail}
            return Intent(order_id, "delivery_exception", facts, str(shipment))
        case ev.OrderDelivered(order_id=order_id, delivered_at=delivered_at):
            return Intent(order_id, "delivered", {"delivered_at": delivered_at.strftime("%A %d %B %Y, %H:%M UTC")})
        case ev.OrderCancelled(order_id=order_id, lines=None, reason=reason):
            return Intent(order_id, "cancelled", {"reason": reason, "items": None})
        case ev.OrderCancelled(order_id=order_id, lines=lines, reason=reason) if lines is not None:
            cancelled = quantities(lines)
            key = "lines:" + ",".join(f"{sku}={n}" for sku, n in sorted(cancelled.items()))
            return Intent(order_id, "cancelled", {"reason": reason, "items": _items_of(cancelled)}, key[:500])
        case (
            ev.ReturnAuthorised()
            | ev.ReturnRejected()
            | ev.ReturnReceived()
            | ev.ReturnClosed()
            | ev.ReturnRefunded()
            | ev.ExchangeChargeFailed()
        ):
            return _return_step(payload)
    return None


def _return_step(payload: ev.Contract) -> Intent | None:
    """One message per return decision (keyed by the return), one per receipt of its parcel, one per refund and
    one per exchange given up."""
    match payload:
        case ev.ReturnAuthorised(order_id=order_id, return_id=return_id, label=label):
            facts: dict[str, Any] = {
                "rma": payload.rma,
                "items": _returned(payload.lines),
                "carrier": label.carrier,
                "service": label.service,
                "warehouse_id": label.warehouse_id,
                "expires_on": payload.expires_at.strftime("%A %d %B %Y"),
            }
            return Intent(order_id, "return_authorised", facts, str(return_id))
        case ev.ReturnRejected(order_id=order_id, return_id=return_id, reasons=reasons):
            facts = {"items": _returned(payload.lines), "reasons": list(reasons)}
            return Intent(order_id, "return_rejected", facts, str(return_id))
        case ev.ReturnReceived(order_id=order_id, rma=rma, receipt=receipt, lines=lines, unexpected=unexpected):
            facts = {
                "rma": rma,
                "items": _items_of(quantities(lines)),
                "set_aside": _items_of(quantities(unexpected)),
                "complete": payload.complete,
            }
            return Intent(order_id, "return_received", facts, f"{rma}:{payload.warehouse_id}:{receipt}"[:500])
        case ev.ReturnClosed(order_id=order_id, return_id=return_id, rma=rma, reason=reason):
            return Intent(order_id, "return_closed", {"rma": rma, "reason": reason}, str(return_id))
        case ev.ReturnRefunded(order_id=order_id, refund_id=refund_id, amount=amount, currency=currency):
            facts = {"amount": f"{amount:.2f} {currency}", "explanation": list(payload.explanation)}
            return Intent(order_id, "refunded", facts, str(refund_id))
        case ev.ExchangeChargeFailed(order_id=order_id, exchange_id=exchange_id, amount=amount, currency=currency):
            facts = {
                "amount": f"{amount:.2f} {currency}",
                "reason": payload.reason,
                "refunded": f"{payload.refunded:.2f} {currency}",
            }
            return Intent(order_id, "exchange_failed", facts, str(exchange_id))
    return None


def _changed(changed: ev.OrderChanged) -> Intent:
    """One message per change applied (keyed by the order's version): what the order holds now, what waits, what
    could not be added, and where it goes (the town only: the message's facts hold no contact details)."""
    facts = {
        "version": changed.order_version,
        "items": _items(changed.lines),
        "waiting": _items(changed.backordered),
        "not_added": _items(changed.refused),
        "service_level": changed.service_level,
        "ships_to": f"{changed.ship_to.city}, {changed.ship_to.country}",
    }
    return Intent(changed.order_id, "changed", facts, f"version:{changed.order_version}")


def _returned(lines: list[ev.ReturnLine]) -> list[dict[str, Any]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


def _shipped(shipped: ev.OrderShipped, backordered: Mapping[str, int]) -> Intent:
    kind = "shipped" if shipped.order_complete and not backordered else "partially_shipped"
    facts = {
        "carrier": shipped.carrier,
        "tracking_number": shipped.tracking_number,
        "tracking_url": _web_link(shipped.tracking_url),
        "promised_delivery": shipped.promised_delivery.strftime("%A %d %B %Y") if shipped.promised_delivery else None,
        "items": _items(shipped.lines),
        "still_to_come": _items_of(backordered),
    }
    return Intent(shipped.order_id, kind, facts, str(shipped.pick_task_id))


def _web_link(url: str | None) -> str | None:
    """Only plain web links go into a message (no javascript: or data: links)."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


def _items(lines: list[ev.ItemQuantity]) -> list[dict[str, Any]]:
    return _items_of(quantities(lines))


def _items_of(units: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": quantity} for sku, quantity in units.items()]


def webhook_body(message: Mapping[str, Any], sales_channel: str, reference: str) -> bytes:
    """The JSON a webhook endpoint receives: the message as rendered plus its facts. Built once, so every
    retry sends (and signs) the same bytes."""
    document = {
        "message_id": message["message_id"],
        "kind": message["kind"],
        "order_id": str(message["order_id"]),
        "shipment_key": message["shipment_key"] or None,
        "sales_channel": sales_channel,
        "reference": reference,
        "subject": message["subject"],
        "text": message["text"],
        "facts": message["facts"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def signature(body: bytes, secret: str) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body, for the X-OMS-Signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2 base, 4 base, ... at most cap."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))
