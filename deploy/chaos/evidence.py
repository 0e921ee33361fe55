"""What the system holds after a run, read as plain data for the checks: the services' tables (with the
administrator's connection, across their schemas), the pick-task and dead-letter topics from where they stood when
the run began, and the SMTP server's Maildir. Only the run's own orders and SKUs are read: the stack is shared."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import asyncpg

from deploy.local.client import admin_client, plain_consumer
from shared.backbone.dlq import STORED
from shared.backbone.kafka import partitions
from shared.backbone.kafka_access import Access
from shared.contracts import topics
from shared.contracts.topics import SERVICES

Key = tuple[str, str]  # (warehouse, sku)


@dataclass(frozen=True)
class CaptureOrder:
    order_id: str
    channel: str
    external_id: str
    status: str


@dataclass(frozen=True)
class AllocationOrder:
    order_id: str
    status: str
    lines: dict[str, int]
    backordered: dict[str, int]
    cancelled: dict[str, int]
    reason: str | None


@dataclass(frozen=True)
class Reservation:
    order_id: str
    shipment_id: str
    warehouse: str
    sku: str
    quantity: int
    short: int
    status: str  # open, shipped, released

    @property
    def units(self) -> int:
        return self.quantity - self.short


@dataclass(frozen=True)
class StockRow:
    warehouse: str
    sku: str
    on_hand: int
    reserved: int


@dataclass(frozen=True)
class PickTask:
    pick_task_id: str
    order_id: str
    warehouse: str
    status: str
    shipped: bool  # a parcel left with a carrier for it


@dataclass(frozen=True)
class PickTaskRecord:
    """A record on oms.warehouse.pick-tasks: what the warehouses were told."""

    type: str
    pick_task_id: str
    order_id: str
    position: tuple[int, int]  # (partition, offset)


@dataclass(frozen=True)
class Message:
    order_id: str
    kind: str
    shipment_key: str
    email: str | None  # the email delivery's status; None when not rendered (no delivery yet)


@dataclass(frozen=True)
class Mail:
    order_id: str
    kind: str
    shipment_key: str
    message_id: str


@dataclass(frozen=True)
class DeadLetter:
    service: str
    key: str | None
    reason: str
    origin: str  # topic[partition]@offset
    stored: bool = False  # kept in the service's dead_letters table (the topic holds a pointer)


@dataclass
class Evidence:
    capture: list[CaptureOrder] = field(default_factory=list)
    allocation: list[AllocationOrder] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)
    stock: list[StockRow] = field(default_factory=list)
    shipped_by_fulfillment: dict[Key, int] = field(default_factory=dict)  # units in parcels, per (warehouse, sku)
    pick_tasks: list[PickTask] = field(default_factory=list)
    pick_task_records: list[PickTaskRecord] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)
    mail_repeats_dropped: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


Offsets = dict[str, dict[int, int]]  # topic -> partition -> offset


async def end_offsets(access: Access, names: Iterable[str]) -> Offsets:
    """Where these topics end now: a run reads its own records from there."""
    async with admin_client(access) as admin, plain_consumer(access) as consumer:
        ends = await consumer.end_offsets(await partitions(admin, names))
    found: Offsets = {}
    for tp, offset in ends.items():
        found.setdefault(tp.topic, {})[tp.partition] = offset
    return found


async def records_since(access: Access, start: Offsets) -> list[Any]:
    """Every record of these topics from the given offsets to their end as of now."""
    async with admin_client(access) as admin, plain_consumer(access) as consumer:
        tps = await partitions(admin, start)
        ends = await consumer.end_offsets(tps)
        wanted = {tp: end for tp, end in ends.items() if end > start.get(tp.topic, {}).get(tp.partition, 0)}
        if not wanted:
            return []
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, start.get(tp.topic, {}).get(tp.partition, 0))
        records: list[Any] = []
        remaining = set(wanted)
        while remaining:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                records.extend(r for r in batch if r.offset < wanted[tp])
                if await consumer.position(tp) >= wanted[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= wanted[tp]:
                    remaining.discard(tp)
        return records


def _quantities(value: Any) -> dict[str, int]:
    if isinstance(value, str):
        value = json.loads(value)
    return {str(k): int(v) for k, v in (value or {}).items()}


async def gather(
    conn: asyncpg.Connection,
    access: Access,
    run: str,
    topic_start: Offsets,
    maildir: Path,
    repeats_log: Path,
    since: float,
) -> Evidence:
    """Everything the checks look at, for the run's orders (their customers' addresses name the run) and SKUs."""
    evidence = Evidence()
    email = f"chaos-{run}-%@example.test"
    rows = await conn.fetch(
        "SELECT order_id::text, channel, external_id, status FROM capture.orders"
        " WHERE document -> 'customer' ->> 'email' LIKE $1",
        email,
    )
    evidence.capture = [CaptureOrder(r["order_id"], r["channel"], r["external_id"], r["status"]) for r in rows]
    ids = [r["order_id"] for r in rows]
    rows = await conn.fetch(
        "SELECT order_id::text, status, lines, backordered, cancelled, reason FROM allocation.orders"
        " WHERE order_id = ANY($1::uuid[])",
        ids,
    )
    evidence.allocation = [
        AllocationOrder(
            r["order_id"],
            r["status"],
            _quantities(r["lines"]),
            _quantities(r["backordered"]),
            _quantities(r["cancelled"]),
            r["reason"],
        )
        for r in rows
    ]
    sku_pattern = f"%-{run}%"
    rows = await conn.fetch(
        "SELECT order_id::text, shipment_id::text, warehouse_id, sku, quantity, short, status"
        " FROM allocation.reservations WHERE sku LIKE $1",
        sku_pattern,
    )
    evidence.reservations = [
        Reservation(
            r["order_id"], r["shipment_id"], r["warehouse_id"], r["sku"], r["quantity"], r["short"], r["status"]
        )
        for r in rows
    ]
    rows = await conn.fetch(
        "SELECT warehouse_id, sku, on_hand, reserved FROM allocation.stock WHERE sku LIKE $1", sku_pattern
    )
    evidence.stock = [StockRow(r["warehouse_id"], r["sku"], r["on_hand"], r["reserved"]) for r in rows]
    rows = await conn.fetch(
        "SELECT p.warehouse_id, line ->> 'sku' AS sku, sum((line ->> 'quantity')::int) AS units"
        " FROM fulfillment.shipments s JOIN fulfillment.pick_tasks p USING (pick_task_id)"
        " CROSS JOIN LATERAL jsonb_array_elements(s.lines) AS line"
        " WHERE p.order_id = ANY($1::uuid[]) GROUP BY 1, 2",
        ids,
    )
    evidence.shipped_by_fulfillment = {(r["warehouse_id"], r["sku"]): int(r["units"]) for r in rows}
    rows = await conn.fetch(
        "SELECT p.pick_task_id::text, p.order_id::text, p.warehouse_id, p.status,"
        " EXISTS (SELECT 1 FROM fulfillment.shipments s WHERE s.pick_task_id = p.pick_task_id) AS shipped"
        " FROM fulfillment.pick_tasks p WHERE p.order_id = ANY($1::uuid[])",
        ids,
    )
    evidence.pick_tasks = [
        PickTask(r["pick_task_id"], r["order_id"], r["warehouse_id"], r["status"], r["shipped"]) for r in rows
    ]
    rows = await conn.fetch(
        "SELECT m.order_id::text, m.kind, m.shipment_key, d.status FROM notifications.messages m"
        " LEFT JOIN notifications.deliveries d ON (d.order_id, d.kind, d.shipment_key, d.channel)"
        " = (m.order_id, m.kind, m.shipment_key, 'email') WHERE m.order_id = ANY($1::uuid[])",
        ids,
    )
    evidence.messages = [Message(r["order_id"], r["kind"], r["shipment_key"], r["status"]) for r in rows]
    evidence.mails = read_mails(maildir, set(ids))
    evidence.mail_repeats_dropped = count_repeats(repeats_log, set(ids))
    records = await records_since(access, topic_start)
    evidence.pick_task_records = pick_task_records(records, set(ids))
    evidence.dead_letters = dead_letters_in(records) + await stored_dead_letters(conn, since)
    return evidence


def read_mails(maildir: Path, order_ids: set[str]) -> list[Mail]:
    """The run's mails in the SMTP server's Maildir (headers only)."""
    box = mailbox.Maildir(maildir, factory=None, create=False)
    parser = BytesHeaderParser()
    found = []
    for key in box.iterkeys():
        with box.get_file(key) as handle:
            headers = parser.parse(handle)  # type: ignore[arg-type]
        order_id = headers.get("X-OMS-Order-Id")
        if order_id in order_ids:
            found.append(
                Mail(
                    order_id,
                    headers.get("X-OMS-Message-Kind", ""),
                    headers.get("X-OMS-Shipment-Key", "") or "",
                    headers.get("Message-ID", ""),
                )
            )
    return found


def count_repeats(repeats_log: Path, order_ids: set[str]) -> int:
    """Repeats of a message already in the mailbox that the SMTP server dropped (by Message-ID), for these orders."""
    if not repeats_log.exists():
        return 0
    lines = repeats_log.read_text().splitlines()
    return sum(json.loads(line).get("order_id") in order_ids for line in lines if line.strip())


def pick_task_records(records: list[Any], order_ids: set[str]) -> list[PickTaskRecord]:
    found = []
    for record in records:
        if record.topic != topics.PICK_TASKS.name or record.value is None:
            continue
        body = json.loads(record.value)
        payload = body.get("payload", {})
        if payload.get("order_id") in order_ids:
            found.append(
                PickTaskRecord(
                    body["type"], payload["pick_task_id"], payload["order_id"], (record.partition, record.offset)
                )
            )
    return found


def dead_letters_in(records: list[Any]) -> list[DeadLetter]:
    found = []
    for record in records:
        topic = topics.BY_NAME.get(record.topic)
        if topic is None or topic not in topics.DEAD_LETTER_TOPICS:
            continue
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers}
        if STORED in headers:  # a pointer to a row of the service's dead_letters table, read from there
            continue
        where = (headers.get("dlq.origin.topic"), headers.get("dlq.origin.partition"), headers.get("dlq.origin.offset"))
        origin = "{}[{}]@{}".format(*where)
        key = None if record.key is None else record.key.decode("utf-8", "replace")
        found.append(DeadLetter(topic.writer, key, headers.get("dlq.reason", ""), origin))
    return found


async def stored_dead_letters(conn: asyncpg.Connection, since: float) -> list[DeadLetter]:
    """Dead letters kept in the services' tables since the run began (epoch seconds)."""
    found = []
    for service in SERVICES:
        rows = await conn.fetch(
            f"SELECT key, reason, origin_topic, origin_partition, origin_offset FROM {service}.dead_letters"
            " WHERE failed_at >= to_timestamp($1)",
            since,
        )
        found += [
            DeadLetter(
                service,
                None if r["key"] is None else bytes(r["key"]).decode("utf-8", "replace"),
                r["reason"],
                f"{r['origin_topic']}[{r['origin_partition']}]@{r['origin_offset']}",
                stored=True,
            )
            for r in rows
        ]
    return found


def watched_topics() -> list[str]:
    return [topics.PICK_TASKS.name, *(t.name for t in topics.DEAD_LETTER_TOPICS)]
