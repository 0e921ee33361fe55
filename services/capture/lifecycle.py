"""How the other services' events move an order along its life: the timeline step each one adds, with its
reason, and the status it asks for (checked against the transition table). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from shared.contracts import events as ev
from shared.contracts.backorders import Quantities, backordered_after, describe, quantities, without

from . import domain


@dataclass(frozen=True)
class Progress:
    """Where an order stands: its status and, per SKU, the units ordered, waiting for stock, cancelled, shipped."""

    status: str
    ordered: Mapping[str, int]
    backordered: Mapping[str, int] = field(default_factory=dict)
    cancelled: Mapping[str, int] = field(default_factory=dict)
    shipped: Mapping[str, int] = field(default_factory=dict)
    received_at: datetime | None = None
    # Every parcel shipped so far has been delivered, while units were still to come (the timeline says so).
    parcels_delivered: bool = False

    @property
    def open(self) -> Quantities:
        """Units neither cancelled nor shipped."""
        return without(without(self.ordered, self.cancelled), self.shipped)


@dataclass(frozen=True)
class Step:
    """One timeline entry: what happened, why, and the order's status after it."""

    name: str
    detail: str | None
    status: str


@dataclass(frozen=True)
class Change:
    progress: Progress
    step: Step
    status_changed: bool


# The events of the other services that move an order along its life, each adding a step to its timeline.
STEPS: tuple[type[ev.Contract], ...] = (
    ev.OrderAllocated,
    ev.OrderBackordered,
    ev.OrderUnfulfillable,
    ev.OrderCancelled,
    ev.PickTaskReleased,
    ev.PickTaskCancelled,
    ev.ShortPickReported,
    ev.CancellationAccepted,
    ev.CancellationRefused,
    ev.OrderShipped,
    ev.DeliveryException,
    ev.OrderDelivered,
    ev.DropshipDeclined,
)


def order_of(payload: ev.Contract) -> UUID | None:
    order_id = getattr(payload, "order_id", None)
    return order_id if isinstance(order_id, UUID) else None


def apply(progress: Progress, payload: ev.Contract) -> Change | None:
    """The step an event adds to the order's timeline and the progress after it; None for events that are
    not about an order's life (stock counts)."""
    backordered = backordered_after(progress.backordered, payload)
    after = replace(progress, backordered=backordered) if backordered is not None else progress
    found = _interpret(after, payload)
    if found is None:
        return None
    name, detail, reported, after = found
    status = domain.advance(progress.status, reported) if reported else progress.status
    after = replace(after, status=status)
    return Change(after, Step(name, detail or None, status), status_changed=status != progress.status)


Interpretation = tuple[str, str, str | None, Progress]


def _interpret(p: Progress, payload: ev.Contract) -> Interpretation | None:
    match payload:
        case ev.OrderAllocated(shipments=shipments, dropship=dropship, reason=reason):
            parts = [(s.warehouse_id, s.lines) for s in shipments] + [(d.supplier_id, d.lines) for d in dropship]
            origins = ", ".join(f"{where} ({describe(quantities(lines))})" for where, lines in parts)
            waiting = f"waiting for stock: {describe(p.backordered)}" if p.backordered else ""
            detail = _join(reason, f"ships from {origins}" if origins else "", waiting)
            if shipments or dropship:
                return "allocated", detail, "allocated", p
            return "backordered", detail, "backordered" if p.backordered else None, p
        case ev.OrderBackordered(reason=reason):
            return "backordered", _join(reason, f"waiting for stock: {describe(p.backordered)}"), "backordered", p
        case ev.OrderUnfulfillable(reason=reason):
            return "rejected", reason, "rejected", p
        case ev.PickTaskReleased(warehouse_id=warehouse):
            return "released", f"pick task sent to {warehouse}", None, p
        case ev.PickTaskCancelled(warehouse_id=warehouse, reason=reason):
            return "pick_task_withdrawn", _join(f"pick task at {warehouse} withdrawn", reason), None, p
        case ev.ShortPickReported(warehouse_id=warehouse, missing=missing):
            return "short_picked", f"{warehouse} could not pick {describe(quantities(missing))}", None, p
        case ev.CancellationAccepted(withdrawn_shipments=withdrawn, reason=reason):
            return "cancellation_accepted", _join(reason, f"{len(withdrawn)} pick task(s) withdrawn"), None, p
        case ev.DropshipDeclined(supplier_id=supplier, lines=lines, cause=cause, reason=reason):
            what = f"{supplier} {cause.replace('_', ' ')}: {describe(quantities(lines))} to be routed again"
            return "dropship_declined", _join(what, reason), None, p
        case ev.CancellationRefused(reason=reason):
            return "cancellation_refused", reason, None, p
        case ev.OrderCancelled():
            return _cancelled(p, payload)
        case ev.OrderShipped():
            return _shipped(p, payload)
        case ev.DeliveryException(carrier=carrier, tracking_number=tracking, detail=detail):
            return "exception", f"{carrier} {tracking}: {detail}", "exception", p
        case ev.OrderDelivered():
            # Fulfillment reports every parcel it shipped delivered; units still waiting for stock (or not yet
            # cancelled) are still to come, so the order is not delivered yet.
            if p.open:
                detail = f"every parcel so far delivered; still to come: {describe(p.open)}"
                return "partially_delivered", detail, None, replace(p, parcels_delivered=True)
            return "delivered", "", "delivered", p
    return None


def _cancelled(p: Progress, cancelled: ev.OrderCancelled) -> Interpretation:
    if cancelled.lines is None:
        return "cancelled", cancelled.reason, "cancelled", replace(p, cancelled=dict(p.ordered))
    lines = quantities(cancelled.lines)
    # Capped at what was ordered: a repeated cancellation cannot cancel more than there is.
    after = replace(
        p, cancelled={sku: min(n, p.cancelled.get(sku, 0) + lines.get(sku, 0)) for sku, n in p.ordered.items()}
    )
    detail = _join(cancelled.reason, describe(lines))
    if not without(p.ordered, after.cancelled):
        return "cancelled", detail, "cancelled", after
    if p.parcels_delivered and not after.open:  # what was left to come is cancelled; the rest arrived
        return "partially_cancelled", _join(detail, "every parcel delivered"), "delivered", after
    if p.status == "partially_shipped" and not after.open:  # what was left to come is cancelled; the rest left
        return "partially_cancelled", detail, "shipped", after
    return "partially_cancelled", detail, None, after


def _shipped(p: Progress, shipped: ev.OrderShipped) -> Interpretation:
    lines = quantities(shipped.lines)
    # A parcel just left: not every parcel shipped so far has arrived any more.
    after = replace(
        p,
        shipped={sku: p.shipped.get(sku, 0) + lines.get(sku, 0) for sku in {*p.ordered, *lines}},
        parcels_delivered=False,
    )
    # Complete when nothing is left to come: counted from the shipments (read in order on this topic), not from
    # what allocation said waits, whose events travel on another topic and may not have been read yet.
    complete = shipped.order_complete and not after.open
    promised = f"promised for {shipped.promised_delivery.isoformat()}" if shipped.promised_delivery else ""
    detail = _join(
        f"{shipped.carrier} {shipped.tracking_number} from {shipped.warehouse_id}", describe(lines), promised
    )
    status = "shipped" if complete else "partially_shipped"
    return status, detail, status, after


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)
