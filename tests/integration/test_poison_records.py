"""No record, whatever its bytes, headers, size or nesting, stops a consumer: on every inbound topic of
capture, allocation and fulfillment, a set of nasty records (200 KB of '[', null and non-UTF-8 event_id
headers, a tombstone, bytes that are not JSON, a number too long to convert, a header name the Kafka
client itself cannot parse) lands in the service's dead-letter topic with its reason, the service keeps
running, and the valid records around them are processed."""

from __future__ import annotations

import functools
import json
import random
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.record.util import calc_crc32c

from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import TopicReader, new_skus, seed, wait_status
from tests.waiting import eventually

Headers = list[tuple[str, bytes | None]]
MARKER = "\x01unreadable\x01"
# The record batch layout (Kafka protocol, magic 2): the CRC-32C at bytes 17..20 covers bytes 21 onwards.
CRC_AT, CRC_FROM = 17, 21


@dataclass
class Nasty:
    value: bytes | None
    headers: Headers
    reason: str  # what the dead letter's reason starts with


def nasty_records(valid: bytes) -> list[Nasty]:
    return [
        Nasty(b"[" * 200_000, [], "not JSON: nested too deeply"),
        Nasty(valid, [("event_id", None)], "event_id header is null"),
        Nasty(valid, [("event_id", b"\xff\xfe")], "event_id header is not UTF-8"),
        Nasty(None, [], "empty record (tombstone)"),
        Nasty(b"\xff\xfe not json", [], "not JSON"),
        Nasty(b'{"quantity": ' + b"9" * 5000 + b"}", [], "not JSON: ValueError"),
    ]


def with_id(event_id: uuid.UUID) -> Headers:
    return [("event_id", str(event_id).encode())]


async def publish_unreadable(
    producer: AIOKafkaProducer, topic: str, partition: int, key: bytes, before: tuple[bytes, Headers]
) -> None:
    """One producer batch: a valid record, then one whose header name is not UTF-8. The broker stores it (it
    does not check header names), but the Kafka client raises UnicodeDecodeError parsing it."""
    batch = producer.create_batch()
    batch.append(key=key, value=before[0], timestamp=None, headers=before[1])
    batch.append(key=key, value=b"{}", timestamp=None, headers=[(MARKER, b"x")])
    raw = bytearray(batch._build())
    at = raw.index(MARKER.encode())
    raw[at : at + len(MARKER)] = b"\xff" * len(MARKER)
    struct.pack_into(">I", raw, CRC_AT, calc_crc32c(bytes(raw[CRC_FROM:])))
    batch._buffer = bytes(raw)
    await (await producer.send_batch(batch, topic, partition=partition))


@dataclass
class Case:
    service: str
    topic: str
    valid: list[dict[str, Any]]  # two valid documents: one before the unreadable record, one after it all
    partition: int = 0
    first_offset: int = 0
    ids: tuple[uuid.UUID, uuid.UUID] = (uuid.uuid4(), uuid.uuid4())
    # Other services that read the topic too (for events of other types): they set the nasty records aside as well.
    other_readers: tuple[str, ...] = ()


async def publish_case(producer: AIOKafkaProducer, case: Case) -> None:
    key = f"poison-{uuid.uuid4()}".encode()
    case.partition = random.randrange(topics.BY_NAME[case.topic].partitions)
    case.ids = (uuid.uuid4(), uuid.uuid4())
    before, after = (json.dumps(v).encode() for v in case.valid)
    sent = []
    for nasty in nasty_records(after):
        sent.append(
            await producer.send(case.topic, nasty.value, key=key, partition=case.partition, headers=nasty.headers)
        )
    offsets = [(await future).offset for future in sent]
    case.first_offset = offsets[0]
    await publish_unreadable(producer, case.topic, case.partition, key, (before, with_id(case.ids[0])))
    await producer.send_and_wait(case.topic, after, key=key, partition=case.partition, headers=with_id(case.ids[1]))


def from_case(record: Any, case: Case) -> bool:
    headers = dict(record.headers)
    return (
        headers.get("dlq.origin.topic") == case.topic.encode()
        and headers.get("dlq.origin.partition") == str(case.partition).encode()
        and int(headers.get("dlq.origin.offset") or -1) >= case.first_offset
    )


async def dead_letters_of(reader: TopicReader, case: Case) -> list[tuple[str, bool]]:
    """(reason, whether marked unreadable without its content) of the case's dead letters, in the order of
    their origin offsets (they may sit on different partitions of the dead-letter topic)."""
    mine = sorted(
        (r for r in await reader.read() if from_case(r, case)), key=lambda r: int(dict(r.headers)["dlq.origin.offset"])
    )
    return [
        (dict(r.headers)["dlq.reason"].decode(), "dlq.unreadable" in dict(r.headers) and r.value is None) for r in mine
    ]


async def test_nasty_records_on_every_inbound_topic_are_dead_lettered_and_no_consumer_stops(http, db, pipeline) -> None:
    # given an order that went all the way (so there are a pick task and a tracking number to report on)
    (sku,) = new_skus(1)
    await seed([("ams", sku, 10)])
    placed = order_document([(sku, 1)])
    order_id = (await http.post("/v1/orders", json=placed)).json()["order_id"]
    await wait_status(http, order_id, {"delivered"}, timeout=90)
    shipment = await db.fetchrow(
        "SELECT s.tracking_number, s.carrier, p.pick_task_id, p.warehouse_id FROM fulfillment.shipments s"
        " JOIN fulfillment.pick_tasks p USING (pick_task_id) WHERE s.order_id = $1",
        uuid.UUID(order_id),
    )
    at = datetime.now(UTC)

    def carrier_update(minutes: int) -> dict[str, Any]:
        when = (at + timedelta(minutes=minutes)).isoformat()
        return {
            "tracking_number": shipment["tracking_number"],
            "carrier": shipment["carrier"],
            "kind": "in_transit",
            "occurred_at": when,
        }

    def warehouse_report() -> dict[str, Any]:
        return {
            "pick_task_id": str(shipment["pick_task_id"]),
            "warehouse_id": shipment["warehouse_id"],
            "kind": "picked",
            "occurred_at": at.isoformat(),
        }

    def receipt() -> dict[str, Any]:
        return {"warehouse_id": "ams", "sku": sku, "kind": "receipt", "quantity": 1, "reference": f"r-{uuid.uuid4()}"}

    cancel_request = {"channel": placed["channel"], "external_id": placed["external_id"], "reason": "poison test"}
    cases = [
        Case("capture", topics.ORDERS_SUBMITTED.name, [order_document([(sku, 1)]), order_document([(sku, 1)])]),
        Case("capture", topics.CANCEL_REQUESTS.name, [cancel_request, cancel_request]),
        Case("allocation", topics.INVENTORY_ADJUSTMENTS.name, [receipt(), receipt()]),
        Case(
            "fulfillment",
            topics.WAREHOUSE_EVENTS.name,
            [warehouse_report(), warehouse_report()],
            other_readers=("returns",),
        ),
        Case("fulfillment", topics.CARRIER_EVENTS.name, [carrier_update(1), carrier_update(2)]),
    ]
    services = tuple(dict.fromkeys(name for case in cases for name in (case.service, *case.other_readers)))
    pids = {name: pipeline[name].pid() for name in services}

    readers = {name: TopicReader(topics.dead_letter_topic(name)) for name in services}
    for reader in readers.values():
        await reader.__aenter__()
    producer = AIOKafkaProducer(**LOCAL.access().client_options(), max_request_size=1_048_576)
    await producer.start()
    try:
        # when the nasty records, then a valid one, are published on each topic
        for case in cases:
            await publish_case(producer, case)

        # then each service dead-letters every nasty record of its topics, with its reason
        # (another reader too, whose broker holds its fetches for more records before answering)
        expected = len(nasty_records(b"")) + 1
        for case in cases:
            for service in (case.service, *case.other_readers):
                letters = await eventually(
                    functools.partial(dead_letters_of, readers[service], case),
                    lambda seen: len(seen) >= expected,
                    timeout=90,
                )
                assert len(letters) == expected, (service, case.topic, letters)
                for nasty, (reason, unreadable) in zip(nasty_records(b""), letters, strict=False):
                    assert reason.startswith(nasty.reason) and not unreadable, (service, case.topic, letters)
                reason, unreadable = letters[-1]
                assert reason.startswith("unreadable: the Kafka client cannot parse the record (UnicodeDecodeError")
                assert unreadable, (service, case.topic, letters)
            # and the valid records before and after the nasty ones were processed
            processed = await eventually(
                functools.partial(
                    db.fetch,
                    f"SELECT event_id FROM {case.service}.processed_events WHERE event_id = ANY($1::uuid[])",
                    list(case.ids),
                ),
                lambda rows: len(rows) == 2,
            )
            assert {r["event_id"] for r in processed} == set(case.ids)
    finally:
        await producer.stop()
        for reader in readers.values():
            await reader.__aexit__()

    # and no consumer stopped: every service is the same process, and ready
    assert {name: pipeline[name].pid() for name in services} == pids
    assert all(pipeline[name].ready() for name in services)
