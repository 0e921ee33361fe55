"""Capture's business metrics: orders taken in, rejection reasons by kind, risk assessments and holds, the status
changes it records and the time from intake to a pick task and to delivery. Labels are bounded (channel, status,
reason kind, level, hold type); never an order id, a customer or a SKU. Counted after the transaction that decided
them commits."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from shared.backbone.metrics import count

from .domain import Rejection

ORDERS_RECEIVED = Counter("oms_orders_received_total", "New orders taken in, by channel.", ["channel"])
REJECTION_REASONS = Counter(
    "oms_order_rejection_reasons_total",
    "Reasons given for rejected orders, by kind (one order may have several).",
    ["reason"],
)
ORDERS_STATUS = Counter(
    "oms_order_status_changes_total", "Orders reaching a status, as recorded by capture.", ["status"]
)
INTAKE_BUSY = Counter(
    "oms_intake_busy_total",
    "Orders refused with 503 because the intake's queue was full, by channel ('unread': refused before the body"
    " naming the channel was read).",
    ["channel"],
)
ORDERS_VALIDATED = Counter("oms_orders_validated_total", "Orders that passed validation, by channel.", ["channel"])
ORDERS_REJECTED = Counter("oms_orders_rejected_total", "Orders refused at intake, by channel.", ["channel"])
RISK_ASSESSMENTS = Counter(
    "oms_risk_assessments_total", "Orders assessed at intake, by level and recommendation.", ["level", "recommendation"]
)
HOLDS = Counter(
    "oms_holds_total",
    "Holds by type and what became of them: placed, released, cancelled (with their order), expired.",
    ["hold_type", "outcome"],
)

# Latency from intake (capture's received_at) to a lifecycle step, observed by capture when it records the
# step. Buckets are fine-grained up to a few seconds (the pipeline itself), coarse beyond (backorders,
# real warehouses and carriers take hours or days).
PICK_TASK_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
DELIVERED_BUCKETS = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60, 300, 3600, 21600, 86400, 172800, 345600, 604800)
INTAKE_TO_PICK_TASK_NAME = "oms_order_intake_to_pick_task_seconds"
INTAKE_TO_DELIVERED_NAME = "oms_order_intake_to_delivered_seconds"
INTAKE_TO_PICK_TASK = Histogram(
    INTAKE_TO_PICK_TASK_NAME,
    "Time from intake to a pick task released to a warehouse (once per pick task).",
    buckets=PICK_TASK_BUCKETS,
)
INTAKE_TO_DELIVERED = Histogram(
    INTAKE_TO_DELIVERED_NAME, "Time from intake to the order delivered.", buckets=DELIVERED_BUCKETS
)


def count_intake(channel: str, reasons: list[Rejection], status: str) -> None:
    """A new order decided: received, then validated (or on hold) or rejected with the kind of each reason."""
    count(ORDERS_RECEIVED.labels(channel))
    count((ORDERS_REJECTED if reasons else ORDERS_VALIDATED).labels(channel))
    count(ORDERS_STATUS.labels(status))
    for reason in reasons:
        count(REJECTION_REASONS.labels(reason.kind))


def count_holds(hold_types: Iterable[str], outcome: str) -> None:
    for hold_type in hold_types:
        count(HOLDS.labels(hold_type, outcome))
