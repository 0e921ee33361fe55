"""Fulfillment rules: the carrier service that keeps the promise at the lowest price, the life of a pick task
(picks, short picks, packing, withdrawal) and when an order counts as shipped or delivered. Business days and the
promise itself are in shared.reference.promises (allocation weighs them too). Pure: the caller passes the clock's
`now` and the rules in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from shared.contracts.backorders import quantities
from shared.contracts.events import CarrierReported, ItemQuantity, WarehouseReported
from shared.reference.promises import add_business_days

from .rates import Carrier, ShippingRules

# ---- carrier choice ----


@dataclass(frozen=True)
class ServiceChoice:
    carrier: Carrier
    service: str
    zone: str
    price: Decimal
    delivery: date  # when this service delivers
    promised_delivery: date  # the promise, moved to `delivery` only when no service can keep it
    keeps_promise: bool = True


def service_options(rules: ShippingRules, country: str, weight_grams: int, leaves: date) -> list[ServiceChoice]:
    """Every carrier service that takes a parcel of this weight to this country, with its price and delivery day."""
    options = []
    for carrier in rules.carriers:
        zone = carrier.zone_of(country)
        if zone is None:
            continue
        for service in carrier.services:
            price = service.price(zone, weight_grams)
            if price is None:
                continue
            delivery = add_business_days(leaves, service.transit_days[zone], rules.calendar)
            options.append(ServiceChoice(carrier, service.code, zone, price, delivery, promised_delivery=delivery))
    return options


def choose_service(
    rules: ShippingRules, country: str, weight_grams: int, leaves: date, promise: date
) -> ServiceChoice | None:
    """The cheapest service delivering by the promise (ties: sooner, then by name); when none can, the one
    delivering soonest (then cheapest), with the promise moved to its delivery day. None: no carrier takes it."""
    options = service_options(rules, country, weight_grams, leaves)
    on_time = [replace(o, promised_delivery=promise) for o in options if o.delivery <= promise]
    if on_time:
        return min(on_time, key=lambda o: (o.price, o.delivery, o.carrier.code, o.service))
    if options:
        fastest = min(options, key=lambda o: (o.delivery, o.price, o.carrier.code, o.service))
        return replace(fastest, keeps_promise=False)
    return None


# ---- pick tasks ----

OPEN = frozenset({"released", "picked", "short_picked"})  # the warehouse may still be working on it
SHIPPED = "packed"  # packing hands the parcel to the carrier: a packed task is a shipment
CLOSED_EMPTY = frozenset({"cancelled", "nothing_picked"})  # ended without a parcel


def next_status(current: str, report: str, picked_anything: bool = True) -> str | None:
    """The status a warehouse report moves a task to; None when the report comes too late to change it
    (a repeat, out of order, or the task was withdrawn) and is only recorded."""
    if current not in OPEN:
        return None
    if report == "picked" and current == "released":
        return "picked"
    if report == "short_picked" and current in ("released", "picked"):
        return "short_picked" if picked_anything else "nothing_picked"
    if report == "packed":
        return SHIPPED
    return None


def picked_within(task: Sequence[ItemQuantity], reported: Iterable[ItemQuantity]) -> list[ItemQuantity]:
    """What a short pick actually holds: the reported lines, never more of a SKU than the task asked for."""
    asked = quantities(task)
    got: dict[str, int] = {}
    for line in reported:
        got[line.sku] = got.get(line.sku, 0) + line.quantity
    kept = {sku: min(quantity, asked[sku]) for sku, quantity in got.items() if sku in asked}
    return [ItemQuantity(sku=sku, quantity=q) for sku, q in sorted(kept.items()) if q > 0]


def missing(task: Sequence[ItemQuantity], picked: Sequence[ItemQuantity]) -> list[ItemQuantity]:
    """Task lines minus picked lines, per SKU."""
    have = quantities(picked)
    short = {sku: quantity - have.get(sku, 0) for sku, quantity in quantities(task).items()}
    return [ItemQuantity(sku=sku, quantity=q) for sku, q in sorted(short.items()) if q > 0]


def order_complete(statuses: Iterable[str]) -> bool:
    """Every pick task of the order that was not withdrawn (or emptied by a short pick) has shipped."""
    live = [s for s in statuses if s not in CLOSED_EMPTY]
    return bool(live) and all(s == SHIPPED for s in live)


def order_delivered(shipments_delivered: list[bool]) -> bool:
    """An order is delivered when every one of its shipments is."""
    return bool(shipments_delivered) and all(shipments_delivered)


# ---- following the warehouse's reports ----


@dataclass(frozen=True)
class Picking:
    """A pick task as the warehouse's reports move it on."""

    pick_task_id: UUID
    order_id: UUID
    status: str
    asked: tuple[ItemQuantity, ...]
    picked: tuple[ItemQuantity, ...] | None = None  # what a short pick held

    @property
    def held(self) -> tuple[ItemQuantity, ...]:
        """What the task holds now: after a short pick, what was picked."""
        return self.asked if self.picked is None else self.picked


@dataclass(frozen=True)
class ReportOutcome:
    """What one warehouse report did to its task: moved it on (`applied`) or, too late, nothing."""

    found: str  # the task's status when the report came
    task: Picking  # the task after the report
    applied: bool
    missing: tuple[ItemQuantity, ...] = ()  # what a short pick left behind
    order_complete: bool = False  # it shipped the order's last shipment still to ship

    @property
    def record(self) -> str:
        """The outcome as the report's record says it."""
        return f"applied: {self.task.status}" if self.applied else f"ignored: task {self.found}"


def follow_reports(
    tasks: Iterable[Picking], reports: Sequence[WarehouseReported], elsewhere: Mapping[UUID, Sequence[str]]
) -> list[ReportOutcome]:
    """Each report applied in order to its task as the reports before it left it (a batch may hold a task's
    `picked` and `packed`): its outcome, with whether a parcel completes its order. `tasks` holds every task of
    the reports' orders; `elsewhere`, by order, the statuses of its other shipments (e.g. purchase orders)."""
    current = {t.pick_task_id: t for t in tasks}
    of_order: dict[UUID, list[UUID]] = {}
    for t in current.values():
        of_order.setdefault(t.order_id, []).append(t.pick_task_id)
    outcomes = []
    for report in reports:
        task = current[report.pick_task_id]
        picked = picked_within(task.asked, report.lines or []) if report.kind == "short_picked" else None
        status = next_status(task.status, report.kind, bool(picked))
        if status is None:  # late, repeated, or for a withdrawn task: recorded, nothing more
            outcomes.append(ReportOutcome(task.status, task, applied=False))
            continue
        moved = replace(task, status=status, picked=task.picked if picked is None else tuple(picked))
        current[task.pick_task_id] = moved
        order = [current[i].status for i in of_order[task.order_id]]
        outcomes.append(
            ReportOutcome(
                task.status,
                moved,
                applied=True,
                missing=() if picked is None else tuple(missing(task.asked, picked)),
                order_complete=status == SHIPPED and order_complete([*order, *elsewhere.get(task.order_id, ())]),
            )
        )
    return outcomes


# ---- following the carrier's updates ----


@dataclass(frozen=True)
class Parcel:
    """A shipment as the carrier's updates move it on."""

    order_id: UUID
    status: str | None = None  # the latest update by the carrier's time
    status_at: datetime | None = None
    delivered_at: datetime | None = None
    exception_at: datetime | None = None  # the last exception reported
    exception_detail: str | None = None


def tracked(parcel: Parcel, update: CarrierReported) -> Parcel:
    """The parcel after a carrier update: updates may come out of the carrier's order, so the latest by its time
    is the status; delivery is kept once known, the last exception reported is kept."""
    at = update.occurred_at
    latest = parcel.status_at is None or parcel.status_at <= at
    moved = replace(
        parcel,
        status=update.kind if latest else parcel.status,
        status_at=at if latest else parcel.status_at,
    )
    if update.kind == "delivered":
        return replace(moved, delivered_at=parcel.delivered_at or at)
    if update.kind == "exception":
        return replace(moved, exception_at=at, exception_detail=update.detail)
    return moved


def follow_updates(
    parcels: Mapping[str, Parcel], updates: Sequence[CarrierReported], first_told: Sequence[bool]
) -> tuple[list[bool], dict[str, Parcel]]:
    """Each update applied in order to its parcel as the updates before it left it: whether it is news (not
    told before, by `first_told`, and the parcel not delivered yet) and the parcels it moved, as they end up."""
    current = dict(parcels)
    moved: dict[str, Parcel] = {}
    news = []
    for update, first in zip(updates, first_told, strict=True):
        parcel = current[update.tracking_number]
        applies = first and parcel.delivered_at is None
        news.append(applies)
        if applies:
            current[update.tracking_number] = moved[update.tracking_number] = tracked(parcel, update)
    return news, moved


def completing_deliveries(
    delivering: Sequence[UUID | None], shipments_delivered: Mapping[UUID, list[bool]]
) -> set[int]:
    """Of a batch's updates (the order of the parcel each one delivered, None for those delivering nothing), those
    that deliver their order: the last delivery of each order whose shipments are all delivered after the batch
    (one of its earlier ones could not: the last one's parcel was still on its way)."""
    last = {order_id: i for i, order_id in enumerate(delivering) if order_id is not None}
    return {i for order_id, i in last.items() if order_delivered(shipments_delivered.get(order_id, []))}


# ---- cancellation ----


@dataclass(frozen=True)
class TaskState:
    pick_task_id: UUID
    warehouse_id: str
    status: str
    lines: tuple[ItemQuantity, ...]  # what the task holds now: after a short pick, what was picked


@dataclass(frozen=True)
class Withdraw:
    tasks: tuple[TaskState, ...]  # may be empty: nothing of it was released to a warehouse (e.g. backordered)


@dataclass(frozen=True)
class Refuse:
    reason: str


def decide_cancellation(tasks: Iterable[TaskState], lines: Sequence[ItemQuantity] | None) -> Withdraw | Refuse:
    """Withdraw every open task holding a cancelled SKU (every task when `lines` is None), or refuse the
    whole request when one of those tasks has already been packed: nothing is withdrawn then."""
    skus = None if lines is None else {line.sku for line in lines}
    needed = [
        t
        for t in sorted(tasks, key=lambda t: str(t.pick_task_id))
        if t.status not in CLOSED_EMPTY and (skus is None or any(line.sku in skus for line in t.lines))
    ]
    shipped = [t for t in needed if t.status not in OPEN]
    if shipped:
        which = ", ".join(f"{t.pick_task_id} from {t.warehouse_id}" for t in shipped)
        return Refuse(f"already packed and handed to the carrier: shipment {which}")
    return Withdraw(tuple(needed))
