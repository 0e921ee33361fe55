"""What the returns service's events add to an order's timeline (steps and their details), to its per-line
returned quantities and to its return status (the state of the return that moved last: review, authorised,
rejected, partially_received, received, closed, refunded, exchanged, exchange_failed). Pure: no I/O. Returns never
change the order's status: it stays delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from shared.contracts import events as ev
from shared.contracts.backorders import describe, quantities

# The returns service's events the order view follows.
FOLLOWED: tuple[type[ev.Contract], ...] = (
    ev.ReturnUnderReview,
    ev.ReturnAuthorised,
    ev.ReturnRejected,
    ev.ReturnReceived,
    ev.ReturnClosed,
    ev.ReturnRefunded,
    ev.RefundAbandoned,
    ev.ExchangeChargeFailed,
)
# An exchange order was opened for the return.
EXCHANGED = "exchanged"
# A refund leaves these states as they are: an exchange's difference refunded is still an exchange, and the refund
# of a partial receipt leaves the RMA waiting for the rest.
REFUND_KEEPS = (EXCHANGED, "partially_received")


@dataclass(frozen=True)
class ReturnNews:
    steps: tuple[tuple[str, str], ...]  # (step, detail)
    state: str | None = None  # the return's state, when the event sets it
    asked: dict[str, int] | None = None  # units asked back per SKU (the lines of the return)
    authorised: bool = False  # the asked units are authorised
    received: dict[str, int] | None = None  # units received per SKU by this event
    keeps: tuple[str, ...] = ()  # states of the return this event's state does not replace


def _asked(lines: list[ev.ReturnLine]) -> dict[str, int]:
    return {line.sku: line.quantity for line in lines}


def news(payload: ev.Contract) -> ReturnNews | None:
    match payload:
        case ev.ReturnUnderReview(lines=lines, reasons=reasons):
            asked = _asked(lines)
            return ReturnNews((("return_requested", f"{describe(asked)}; for review: {'; '.join(reasons)}"),),
                              "review", asked)  # fmt: skip
        case ev.ReturnAuthorised(lines=lines, rma=rma, label=label, decided_by=by):
            asked = _asked(lines)
            requested = (("return_requested", describe(asked)),) if by == "policy" else ()
            label_text = f"label {label.carrier} {label.service} to {label.warehouse_id}"
            authorised = (("return_authorised", f"{rma}: {describe(asked)}; {label_text}"),)
            return ReturnNews(requested + authorised, "authorised", asked, authorised=True)
        case ev.ReturnRejected(lines=lines, reasons=reasons, decided_by=by):
            asked = _asked(lines)
            requested = (("return_requested", describe(asked)),) if by == "policy" else ()
            return ReturnNews((*requested, ("return_rejected", "; ".join(reasons))), "rejected", asked)
        case ev.ReturnReceived(rma=rma, warehouse_id=warehouse, lines=lines, unexpected=unexpected, complete=done):
            kept = ", ".join(f"{line.sku} x{line.quantity} {line.disposition}" for line in lines)
            aside = f"set aside for review: {describe(quantities(unexpected))}" if unexpected else ""
            detail = "; ".join(p for p in (f"{rma} at {warehouse}", kept, aside) if p)
            state = "received" if done else "partially_received"
            return ReturnNews((("return_received", detail),), state, received=dict(quantities(lines)))
        case ev.ReturnClosed(rma=rma, reason=reason):
            return ReturnNews((("return_closed", f"{rma}: {reason}"),), "closed")
        case ev.ReturnRefunded(amount=amount, currency=currency):
            return ReturnNews((("refunded", f"{amount:.2f} {currency}"),), "refunded", keeps=REFUND_KEEPS)
        case ev.RefundAbandoned(amount=amount, currency=currency, reason=reason):
            return ReturnNews((("refund_failed", f"{amount:.2f} {currency}: {reason}"),))
        case ev.ExchangeChargeFailed(amount=amount, currency=currency, reason=reason, refunded=refunded):
            detail = (
                f"{amount:.2f} {currency} could not be charged: {reason}; {refunded:.2f} {currency} refunded instead"
            )
            return ReturnNews((("exchange_failed", detail),), "exchange_failed")
    return None


def exchange_order(original: ev.SubmittedOrder, exchange: ev.ExchangeRequested, at: datetime) -> ev.SubmittedOrder:
    """The exchange order: the original's customer, address and service level, the new lines, no shipping; paid
    by the returned value and, for a dearer one, the difference charged (an exchange announced before charges
    existed has it authorised only)."""
    lines = [ev.SubmittedLine(sku=p.sku, quantity=p.quantity, unit_price=p.unit_price) for p in exchange.lines]
    total = sum((p.unit_price * p.quantity for p in exchange.lines), Decimal(0))
    return original.model_copy(
        update={
            "external_id": f"exchange-{exchange.exchange_id}",
            "placed_at": at,
            "lines": lines,
            "shipping_price": Decimal(0),
            "payment": ev.Payment(status="paid" if settled(exchange) else "authorized", amount=total),
            "original_order_id": exchange.order_id,
        }
    )


def settled(exchange: ev.ExchangeRequested) -> bool:
    """The exchange order is paid in full: by the returned value, or with the difference charged."""
    return exchange.difference <= 0 or exchange.charge_reference is not None


def exchange_ordered(order_id: UUID, status: str, exchange: ev.ExchangeRequested) -> str:
    """The original order's timeline step detail: the exchange order and how its price was settled."""
    detail = f"exchange order {order_id} ({status})"
    if exchange.charge_reference is not None:
        detail += f"; difference {exchange.difference:.2f} {exchange.currency} charged"
    elif exchange.difference < 0:
        detail += f"; difference {-exchange.difference:.2f} {exchange.currency} to refund"
    return detail
