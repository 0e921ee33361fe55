"""The invariants a chaos run must leave intact, as pure functions over the evidence (deploy/chaos/evidence.py) and
what the driver sent: each returns a Check with how many things it looked at, every violation it found (exact, with
the subject and why), and counts worth reporting that are not violations.

1. orders: every accepted order exists in capture and is final (delivered, rejected, cancelled) or waiting with its
   reason, allocation holding it as waiting for exactly the missing units; every order's units add up.
2. stock: per (warehouse, SKU), on hand = received - shipped - lost in short picks; reserved = what open
   reservations hold, never more than on hand; no open reservation of an order that is over (leaked); the units
   fulfillment put in parcels are the units allocation booked as shipped.
3. pick tasks: no task withdrawn and then shipped; every task the warehouses had to work on was published to them
   (republished records of the same task are counted, not violations); nothing published that fulfillment lacks.
4. mail: exactly one email per (order, kind, shipment) in the mailbox, one for every message sent and none for
   anything else; every message delivered; every order told what became of it.
5. dead letters: only the injected poison records, each with its reason, each set aside by every service reading
   its topic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .evidence import (
    AllocationOrder,
    CaptureOrder,
    DeadLetter,
    Key,
    Mail,
    Message,
    PickTask,
    PickTaskRecord,
    Reservation,
    StockRow,
)

FINAL = ("delivered", "rejected", "cancelled")
# Capture statuses of an order that waits for stock: nothing shipped yet, or a part.
WAITING = ("backordered", "partially_shipped")
OVER_IN_ALLOCATION = ("cancelled", "unfulfillable")


@dataclass(frozen=True)
class Violation:
    subject: str
    detail: str


@dataclass
class Check:
    name: str
    title: str
    checked: int = 0
    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def violate(self, subject: str, detail: str) -> None:
        self.violations.append(Violation(subject, detail))

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "checked": self.checked,
            "violations": len(self.violations),
            "counts": self.counts,
            "examples": [{"subject": v.subject, "detail": v.detail} for v in self.violations[:50]],
        }


@dataclass(frozen=True)
class Accepted:
    """An order the pipeline accepted from the driver: an HTTP 202 (with its id) or a record the broker took."""

    channel: str
    external_id: str
    order_id: str | None = None
    scenario: str = ""  # what the driver meant it for (named in violations, to tell where to look)


# ---- 1. orders ----


def orders_final_or_waiting(
    accepted: Iterable[Accepted],
    capture: Iterable[CaptureOrder],
    allocation: Iterable[AllocationOrder],
    reservations: Iterable[Reservation],
) -> Check:
    check = Check("orders", "every accepted order final, or waiting with its reason for exactly the missing units")
    by_id = {o.order_id: o for o in capture}
    by_ref = {(o.channel, o.external_id): o for o in capture}
    booked = {o.order_id: o for o in allocation}
    held: dict[str, list[Reservation]] = {}
    for r in reservations:
        held.setdefault(r.order_id, []).append(r)
    for order in accepted:
        check.checked += 1
        subject = order.order_id or f"{order.channel}:{order.external_id}"
        found = by_id.get(order.order_id) if order.order_id else by_ref.get((order.channel, order.external_id))
        if found is None:
            check.violate(f"{subject} ({order.scenario})", "accepted, but capture has no such order (lost)")
            continue
        ours = held.get(found.order_id, [])
        booking = booked.get(found.order_id)
        for problem in (_units_unaccounted(booking, ours) if booking else None, _state_problem(found, booking, ours)):
            if problem:
                check.violate(f"{found.order_id} ({order.scenario})", problem)
        state = found.status if found.status in FINAL else ("waiting" if found.status in WAITING else found.status)
        check.count(state)
    return check


def _units_unaccounted(order: AllocationOrder, reservations: list[Reservation]) -> str | None:
    """Per SKU: ordered = cancelled + waiting + in open or shipped reservations (less what was short)."""
    for sku, ordered in sorted(order.lines.items()):
        held = sum(r.units for r in reservations if r.sku == sku and r.status in ("open", "shipped"))
        accounted = order.cancelled.get(sku, 0) + order.backordered.get(sku, 0) + held
        if accounted != ordered:
            return (
                f"{sku}: {ordered} ordered, but {order.cancelled.get(sku, 0)} cancelled +"
                f" {order.backordered.get(sku, 0)} waiting + {held} reserved or shipped = {accounted}"
            )
    return None


def _state_problem(order: CaptureOrder, booking: AllocationOrder | None, reservations: list[Reservation]) -> str | None:
    open_units = sum(r.units for r in reservations if r.status == "open")
    where = f"capture {order.status}, allocation {booking.status if booking else 'none'}"
    if order.status == "rejected":
        return None if booking is None or booking.status == "unfulfillable" else f"{where}: rejected, yet allocated"
    if booking is None:
        return f"{where}: allocation never had the order"
    if (order.status in FINAL or order.status in WAITING) and open_units:
        return f"{where}: {open_units} units still reserved in open shipments (nothing is picking them)"
    if order.status == "delivered":
        return f"{where}: delivered with units waiting" if booking.backordered else None
    if order.status == "cancelled":
        return None if booking.status == "cancelled" else f"{where}: cancelled in capture only"
    if order.status in WAITING:
        if booking.status != "backordered" or not booking.backordered:
            return f"{where}: waiting in capture, but allocation does not hold it as waiting"
        if not (booking.reason or "").strip():
            return f"{where}: waiting without a reason"
        return None
    return f"{where}: neither final nor waiting"


# ---- 2. stock ----


def stock_balances(
    stock: Iterable[StockRow],
    received: dict[Key, int],
    reservations: Iterable[Reservation],
    shipped_by_fulfillment: dict[Key, int],
    capture: Iterable[CaptureOrder],
    allocation: Iterable[AllocationOrder],
) -> Check:
    check = Check("stock", "on hand = received - shipped - lost; reserved = open reservations of live orders")
    reservations = list(reservations)
    over = {o.order_id for o in capture if o.status in FINAL}
    over |= {o.order_id for o in allocation if o.status in OVER_IN_ALLOCATION}
    rows = {(s.warehouse, s.sku): s for s in stock}
    for key in sorted(set(received) - set(rows)):
        check.violate(f"{key[0]}/{key[1]}", f"{received[key]} units received, but allocation has no stock row")
    for key, row in sorted(rows.items()):
        check.checked += 1
        subject = f"{key[0]}/{key[1]}"
        mine = [r for r in reservations if (r.warehouse, r.sku) == key]
        shipped = sum(r.units for r in mine if r.status == "shipped")
        lost = sum(r.short for r in mine)
        reserved = sum(r.units for r in mine if r.status == "open")
        expected = received.get(key, 0) - shipped - lost
        if row.on_hand != expected:
            check.violate(
                subject,
                f"on hand {row.on_hand}, but {received.get(key, 0)} received - {shipped} shipped - {lost} lost"
                f" = {expected}",
            )
        if row.reserved != reserved:
            check.violate(subject, f"reserved {row.reserved}, but open reservations hold {reserved}")
        if row.on_hand < 0 or row.reserved < 0 or row.reserved > row.on_hand:
            check.violate(subject, f"on hand {row.on_hand}, reserved {row.reserved}: negative or oversold")
        leaked = [r for r in mine if r.status == "open" and r.units and r.order_id in over]
        if leaked:
            check.violate(subject, f"{sum(r.units for r in leaked)} units reserved for orders that are over (leaked)")
        if shipped_by_fulfillment.get(key, 0) != shipped:
            check.violate(
                subject, f"{shipped} units booked shipped, but {shipped_by_fulfillment.get(key, 0)} left in parcels"
            )
        check.count("units received", received.get(key, 0))
        check.count("units shipped", shipped)
        check.count("units lost in short picks", lost)
        check.count("units reserved", reserved)
    return check


# ---- 3. pick tasks ----


def pick_tasks_seen(tasks: Iterable[PickTask], published: Iterable[PickTaskRecord]) -> Check:
    check = Check("pick tasks", "no task withdrawn then shipped; warehouses saw every task (republished ones counted)")
    published = sorted(published, key=lambda r: r.position)
    released = Counter(r.pick_task_id for r in published if r.type == "PickTaskReleased")
    withdrawn = {r.pick_task_id for r in published if r.type == "PickTaskCancelled"}
    known = set()
    for task in tasks:
        check.checked += 1
        known.add(task.pick_task_id)
        if task.shipped and (task.pick_task_id in withdrawn or task.status == "cancelled"):
            check.violate(task.pick_task_id, f"withdrawn, then shipped (status {task.status})")
        if task.pick_task_id in released:
            check.count("republished", released[task.pick_task_id] - 1)
        elif task.status == "cancelled":
            check.count("born withdrawn (never sent)")
        else:
            check.violate(task.pick_task_id, f"status {task.status}, but never published to the warehouse")
        if task.pick_task_id in withdrawn:
            check.count("withdrawn")
        if task.shipped:
            check.count("shipped")
    for pick_task_id in sorted(set(released) - known):
        check.violate(pick_task_id, "published to the warehouse, but fulfillment has no such task")
    seen_withdrawn: set[str] = set()
    for record in published:  # a release repeated after the withdrawal: the warehouse may start on it again
        if record.type == "PickTaskCancelled":
            seen_withdrawn.add(record.pick_task_id)
        elif record.pick_task_id in seen_withdrawn:
            check.count("released again after withdrawal (not shipped)")
    return check


# ---- 4. mail ----

TOLD = {"delivered": "delivered", "cancelled": "cancelled", "rejected": "rejected"}


def one_mail_each(messages: Iterable[Message], mails: Iterable[Mail], capture: Iterable[CaptureOrder]) -> Check:
    check = Check("mail", "exactly one email per (order, kind, shipment) in the mailbox, one for each message sent")
    messages = list(messages)
    in_box = Counter((m.order_id, m.kind, m.shipment_key) for m in mails)
    expected = {(m.order_id, m.kind, m.shipment_key): m for m in messages}
    for key, message in sorted(expected.items()):
        check.checked += 1
        subject = "/".join(key).rstrip("/")
        if message.email != "sent":
            check.violate(subject, f"email delivery {message.email or 'never planned'}, not sent")
        elif in_box[key] != 1:
            check.violate(subject, f"sent, and {in_box[key]} in the mailbox")
        check.count(f"{message.kind} sent" if message.email == "sent" else f"{message.kind} not sent")
    for key, n in sorted(in_box.items()):
        if key not in expected:
            check.violate("/".join(key).rstrip("/"), f"{n} in the mailbox, but no such message was sent")
    kinds = {(m.order_id, m.kind) for m in messages}
    for order in capture:
        told = ["rejected"] if order.status == "rejected" else ["confirmed"]
        if order.status in TOLD and order.status != "rejected":
            told.append(TOLD[order.status])
        for kind in told:
            if (order.order_id, kind) not in kinds:
                check.violate(order.order_id, f"{order.status}, but no {kind} message")
    return check


# ---- 5. dead letters ----


@dataclass(frozen=True)
class Poison:
    key: str
    topic: str
    reason: str  # what its dead letter's reason starts with
    readers: tuple[str, ...]


def only_poison_dead_lettered(dead_letters: Iterable[DeadLetter], poison: Iterable[Poison]) -> Check:
    check = Check("dead letters", "only the injected poison records, each with its reason, by every reader")
    injected = {p.key: p for p in poison}
    found: Counter[tuple[str, str]] = Counter()
    for letter in dead_letters:
        check.checked += 1
        sent = injected.get(letter.key or "")
        subject = f"{letter.service}: {letter.origin}"
        if sent is None:
            check.violate(subject, f"dead-lettered, but not injected poison (key {letter.key!r}): {letter.reason}")
            continue
        if not letter.reason.startswith(sent.reason):
            check.violate(subject, f"reason {letter.reason!r}, expected {sent.reason!r}...")
        if letter.service not in sent.readers:
            check.violate(subject, f"set aside by {letter.service}, which does not read {sent.topic}")
        found[(sent.key, letter.service)] += 1
        if letter.stored:
            check.count("kept in a dead_letters table")
    for sent in injected.values():
        for service in sent.readers:
            n = found[(sent.key, service)]
            if n == 0:
                check.violate(f"{service}: {sent.key}", f"poison on {sent.topic} never dead-lettered")
            elif n > 1:
                check.count("poison dead-lettered again (redelivered)", n - 1)
    check.count("poison records injected", len(injected))
    return check
