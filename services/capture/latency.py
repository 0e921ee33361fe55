"""How long orders take from intake to a pick task and to delivery, observed as capture records those
steps in the timeline (it alone knows when each order was received)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Histogram

from shared.backbone.kafka import Inbound
from shared.backbone.metrics import observe
from shared.contracts import events as ev

from .lifecycle import Progress
from .metrics import INTAKE_TO_DELIVERED, INTAKE_TO_PICK_TASK

MEASURED: dict[type[ev.Contract], Histogram] = {
    ev.PickTaskReleased: INTAKE_TO_PICK_TASK,
    ev.OrderDelivered: INTAKE_TO_DELIVERED,
}


def observe_step(progress: Progress, msg: Inbound[Any]) -> None:
    """Observe the time since intake when the event is a measured step (once per event: the inbox sees to it)."""
    histogram = MEASURED.get(type(msg.payload))
    if histogram is not None and progress.received_at is not None:
        observe(histogram, (msg.envelope.occurred_at - progress.received_at).total_seconds())
