"""Fulfillment rules: the carrier service that keeps the promise at the lowest price, the life of a pick task
(picks, short picks, packing, withdrawal) and when an order counts as shipped or delivered. Business days and the
promise itself are in shared.reference.promises (allocation weighs them too). Pure: the caller passes the clock's
`now` and the rules in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from uuid import UUID

from shared.contracts.backorders import quantities
from shared.contracts.events import ItemQuantity
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
