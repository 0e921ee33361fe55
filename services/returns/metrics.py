"""Returns' business metrics, counted once the transaction that decides them commits: requests by outcome and
channel, units asked back by reason, units received by disposition, RMAs closed unfinished, refunds and exchange
charges by outcome and amount. Labels are bounded
(channel, outcome, reason code from the configured tree, disposition); never an order id, an RMA or a SKU (the
return rate by SKU is a view: GET /v1/returns/rates?by=sku)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

from shared.backbone.metrics import count, observe
from shared.contracts import events as ev

REQUESTS = Counter(
    "oms_return_requests_total", "Return requests decided, by channel and outcome.", ["channel", "outcome"]
)
UNITS_REQUESTED = Counter("oms_return_units_requested_total", "Units asked back, by reason code.", ["reason"])
UNITS_RECEIVED = Counter(
    "oms_return_units_received_total",
    "Returned units received, by disposition (`unexpected` for units not on their RMA).",
    ["disposition"],
)
REFUNDS = Counter(
    "oms_refunds_total",
    "Refunds by outcome: requested of the provider, retried, succeeded, abandoned.",
    ["outcome"],
)
CHARGES = Counter(
    "oms_charges_total",
    "Charges of dearer exchanges' differences by outcome: requested of the provider, retried, succeeded, abandoned.",
    ["outcome"],
)
CHARGED = Counter(
    "oms_charged_amount_total", "Money taken from customers for dearer exchanges, by currency.", ["currency"]
)
REFUNDED = Counter("oms_refunded_amount_total", "Money paid back to customers, by currency.", ["currency"])
REQUEST_TO_REFUND = Histogram(
    "oms_return_request_to_refund_seconds",
    "Time from a return request to the provider's refund.",
    buckets=(60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400),
)
RETURN_RATE = Gauge(
    "oms_return_rate_ratio", "Units returned (received on their RMA) per unit shipped, by channel.", ["channel"]
)
RMAS_CLOSED = Counter("oms_rmas_expired_total", "RMAs closed at their expiry before everything came back.")


def count_request(channel: str, outcome: str, lines: Sequence[ev.ReturnLine]) -> None:
    count(REQUESTS.labels(channel, outcome))
    for line in lines:
        count(UNITS_REQUESTED.labels(line.reason), line.quantity)


def count_emitted(payload: ev.Contract) -> None:
    match payload:
        case ev.ReturnReceived(lines=lines, unexpected=unexpected):
            for line in lines:
                count(UNITS_RECEIVED.labels(line.disposition), line.quantity)
            for line in unexpected:
                count(UNITS_RECEIVED.labels("unexpected"), line.quantity)
        case ev.ReturnClosed():
            count(RMAS_CLOSED)
        case ev.RefundRequested():
            count(REFUNDS.labels("requested"))
        case ev.ReturnRefunded(amount=amount, currency=currency):
            count(REFUNDS.labels("succeeded"))
            count(REFUNDED.labels(currency), float(amount))
            observe(REQUEST_TO_REFUND, payload.requested_to_refunded_seconds)
        case ev.ChangeRefunded(amount=amount, currency=currency):
            count(REFUNDS.labels("succeeded"))
            count(REFUNDED.labels(currency), float(amount))
        case ev.RefundAbandoned() | ev.ChangeRefundAbandoned():
            count(REFUNDS.labels("abandoned"))
        case ev.ChargeRequested():
            count(CHARGES.labels("requested"))
        case ev.ExchangeChargeFailed():
            count(CHARGES.labels("abandoned"))


def count_charged(currency: str, amount: Decimal) -> None:
    count(CHARGES.labels("succeeded"))
    count(CHARGED.labels(currency), float(amount))


def count_retry(kind: Literal["refund", "charge"]) -> None:
    count((REFUNDS if kind == "refund" else CHARGES).labels("retried"))
