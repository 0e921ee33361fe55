"""The integrators' kit (oms_kit) on FastStream's in-memory test broker: what a warehouse's handler gets, what is
committed, set aside or tried again, and what the reports and orders look like on the wire."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faststream import AckPolicy
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from oms_kit import ChannelAdapter, Connection, DeadLetter, DeadLetterFile, WarehouseWorker
from oms_kit.asyncapi import document, render
from oms_kit.receiving import Receiver
from shared.backbone.kafka import encode
from shared.contracts import events as ev
from shared.contracts.envelope import wrap
from shared.contracts.topics import PICK_TASKS, WAREHOUSE_EVENTS
from tests.factories import order_document

CONNECTION = Connection("127.0.0.1:1", "warehouses", "not-used-in-memory")


def released(warehouse: str = "ams", sku: str = "SKU-1", quantity: int = 2) -> ev.PickTaskReleased:
    return ev.PickTaskReleased(
        pick_task_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        warehouse_id=warehouse,
        lines=[ev.ItemQuantity(sku=sku, quantity=quantity)],
        ship_to=ev.Address(name="A Customer", line1="Dam 1", city="Amsterdam", postal_code="1012 JS", country="NL"),
        service_level="standard",
        created_at=datetime.now(UTC),
    )


def record_of(task: ev.Contract) -> bytes:
    return encode(wrap(task))


def worker_in(tmp_path: Path, **options: Any) -> tuple[WarehouseWorker, DeadLetterFile]:
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    return WarehouseWorker(
        CONNECTION, group="warehouses-test", dead_letters=letters, backoff_seconds=0, **options
    ), letters


async def test_a_released_pick_task_reaches_the_handler_as_the_typed_contract(tmp_path: Path) -> None:
    worker, letters = worker_in(tmp_path)
    got: list[ev.PickTaskReleased] = []

    @worker.on_pick_task
    async def take(task: ev.PickTaskReleased) -> None:
        got.append(task)

    task = released()
    async with TestKafkaBroker(worker.broker) as broker:
        await broker.publish(record_of(task), PICK_TASKS.name, key=b"ams")
    assert got == [task]
    assert letters.read() == []


async def test_a_record_that_is_no_pick_task_is_set_aside_with_its_reason_and_the_next_task_is_handled(
    tmp_path: Path,
) -> None:
    worker, letters = worker_in(tmp_path)
    got: list[ev.PickTaskReleased] = []

    @worker.on_pick_task
    async def take(task: ev.PickTaskReleased) -> None:
        got.append(task)

    task = released()
    async with TestKafkaBroker(worker.broker) as broker:
        await broker.publish(b'{"not json', PICK_TASKS.name, key=b"ams")
        await broker.publish(record_of(ev.WarehouseReported(
            pick_task_id=uuid.uuid4(), warehouse_id="ams", kind="picked", occurred_at=datetime.now(UTC)
        )), PICK_TASKS.name, key=b"ams")  # fmt: skip
        await broker.publish(record_of(task), PICK_TASKS.name, key=b"ams")
    reasons = [letter["reason"] for letter in letters.read()]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "event type WarehouseReported does not belong on oms.warehouse.pick-tasks"
    assert got == [task]


async def test_tasks_for_other_warehouses_are_passed_over(tmp_path: Path) -> None:
    worker, _ = worker_in(tmp_path, warehouses={"fra"})
    got: list[str] = []

    @worker.on_pick_task
    async def take(task: ev.PickTaskReleased) -> None:
        got.append(task.warehouse_id)

    async with TestKafkaBroker(worker.broker) as broker:
        await broker.publish(record_of(released("ams")), PICK_TASKS.name, key=b"ams")
        await broker.publish(record_of(released("fra")), PICK_TASKS.name, key=b"fra")
    assert got == ["fra"]


class Message:
    """What the receiver needs of a FastStream message: its records (one, or a batch), ack and nack (counted)."""

    def __init__(self, *values: bytes) -> None:
        records = tuple(
            type(
                "Record",
                (),
                {"topic": PICK_TASKS.name, "partition": 0, "offset": 7 + n, "timestamp": 0, "key": b"ams",
                 "value": value, "headers": ()},
            )()
            for n, value in enumerate(values)
        )  # fmt: skip
        self.raw_message = records[0] if len(records) == 1 else records
        self.acks = self.nacks = 0

    async def ack(self) -> None:
        self.acks += 1

    async def nack(self) -> None:
        self.nacks += 1


async def test_a_batch_is_handled_record_by_record_in_order_and_committed_once(tmp_path: Path) -> None:
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    first, second = released(), released()
    got: list[ev.PickTaskReleased] = []

    async def take(task: ev.PickTaskReleased) -> None:
        got.append(task)

    message = Message(record_of(first), b"{}", record_of(second))
    await Receiver(letters).receive(message, {ev.PickTaskReleased: take})  # type: ignore[arg-type]
    assert got == [first, second]
    assert [(letter["offset"], letter["reason"][:7]) for letter in letters.read()] == [(8, "schema:")]
    assert (message.acks, message.nacks) == (1, 0)


async def test_a_handler_that_fails_twice_is_tried_again_and_its_record_committed_once(tmp_path: Path) -> None:
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    calls = 0

    async def flaky(_: ev.PickTaskReleased) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("the WMS is restarting")

    message = Message(record_of(released()))
    await Receiver(letters, attempts=5, backoff_seconds=0).receive(message, {ev.PickTaskReleased: flaky})  # type: ignore[arg-type]
    assert (calls, message.acks, message.nacks) == (3, 1, 0)
    assert letters.read() == []


async def test_a_handler_that_always_fails_sets_its_record_aside_and_the_partition_goes_on(tmp_path: Path) -> None:
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    calls = 0

    async def broken(_: ev.PickTaskReleased) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("no such bin")

    message = Message(record_of(released()))
    await Receiver(letters, attempts=3, backoff_seconds=0).receive(message, {ev.PickTaskReleased: broken})  # type: ignore[arg-type]
    assert (calls, message.acks, message.nacks) == (3, 1, 0)
    [letter] = letters.read()
    assert letter["reason"] == "handler failed 3 times, last with KeyError"
    assert (letter["topic"], letter["partition"], letter["offset"]) == (PICK_TASKS.name, 0, 7)


async def test_a_dead_letter_that_cannot_be_kept_rewinds_the_record_instead_of_committing_past_it() -> None:
    class Full:
        async def put(self, letter: DeadLetter) -> None:
            raise OSError("disk full")

    message = Message(b"not json at all")
    with pytest.raises(OSError):
        await Receiver(Full()).receive(message, {})  # type: ignore[arg-type]
    assert (message.acks, message.nacks) == (0, 1)


async def test_reports_are_keyed_by_warehouse_and_a_repeated_report_is_the_same_event(tmp_path: Path) -> None:
    worker, _ = worker_in(tmp_path)
    seen: list[tuple[bytes, str, dict[str, Any]]] = []

    @worker.broker.subscriber(WAREHOUSE_EVENTS.name, group_id="warehouses-observer", ack_policy=AckPolicy.MANUAL)
    async def observe(message: KafkaMessage) -> None:
        record: Any = message.raw_message
        headers = dict(record.headers)
        seen.append((record.key, headers["event_id"].decode(), json.loads(record.value)))

    task = released()
    async with TestKafkaBroker(worker.broker):
        await worker.picked(task)
        await worker.picked(task)  # sent again after a restart
        await worker.packed(task, 900)
    assert [key for key, _, _ in seen] == [b"ams"] * 3
    assert seen[0][1] == seen[1][1] != seen[2][1]
    # what the OMS reads back is the contract it validates
    picked, _, packed = (WAREHOUSE_EVENTS.parse_bare(body) for _, _, body in seen)
    assert isinstance(picked, ev.WarehouseReported) and picked.kind == "picked" and picked.lines == task.lines
    assert isinstance(packed, ev.WarehouseReported) and packed.package == ev.Package(weight_grams=900)


async def test_the_channel_adapter_keys_an_order_by_channel_and_external_id_and_speaks_only_for_its_channel() -> None:
    adapter = ChannelAdapter(Connection("127.0.0.1:1", "channel-adapters", "-"), channel="webshop")
    keys: list[bytes] = []

    @adapter.broker.subscriber("oms.orders.submitted", group_id="channel-adapters-observer")
    async def observe(message: KafkaMessage) -> None:
        record: Any = message.raw_message
        keys.append(record.key)

    order = ev.SubmittedOrder.model_validate(order_document())
    async with TestKafkaBroker(adapter.broker):
        await adapter.submit(order)
        with pytest.raises(ValueError, match="speaks for channel webshop"):
            await adapter.submit(order.model_copy(update={"channel": "marketplace"}))
    assert keys == [f"webshop:{order.external_id}".encode()]


def test_what_reaches_the_kafka_client_commits_after_the_handler_from_the_earliest_offset_to_every_replica(
    tmp_path: Path,
) -> None:
    # FastStream's defaults would commit before the handler, start at the end of the topic, be acknowledged by
    # the leader alone and create topics a subscriber names; these are the options it hands to aiokafka.
    worker, _ = worker_in(tmp_path)
    subscriber: Any = worker.broker.subscribers[0]
    assert len(worker.broker.subscribers) == 1
    assert subscriber.ack_policy is AckPolicy.MANUAL
    consumer = subscriber._connection_args
    assert consumer["enable_auto_commit"] is False and consumer["auto_offset_reset"] == "earliest"
    assert subscriber._outer_config.allow_auto_create_topics is False
    producer = worker.broker._connection_kwargs
    assert (producer["acks"], producer["enable_idempotence"]) == ("all", True)
    assert (producer["sasl_mechanism"], producer["security_protocol"]) == ("SCRAM-SHA-256", "SASL_PLAINTEXT")


def test_the_asyncapi_document_describes_what_each_side_sends_and_receives() -> None:
    spec = document()
    addresses = {channel["address"] for channel in spec["channels"].values()}
    assert addresses == {
        "oms.orders.submitted",
        "oms.orders.cancel-requests",
        "oms.warehouse.pick-tasks",
        "oms.warehouse.events",
        "oms.returns.events",
    }
    pick_task = spec["components"]["schemas"]["PickTaskRecord"]
    assert pick_task["properties"]["type"]["enum"] == ["PickTaskReleased", "PickTaskCancelled"]
    assert "PickTaskReleased" in spec["components"]["schemas"]


def test_the_checked_in_kit_document_is_generated_from_the_kit() -> None:
    checked_in = Path(__file__).resolve().parents[2] / "docs" / "kit-asyncapi.json"
    assert checked_in.read_text() == render(), "run `make docs` after changing the kit or a contract it carries"


def test_a_kit_broker_guards_its_clients_against_writes_to_closed_connections() -> None:
    # A process of its own: the guard is process-wide, and this one's other tests may have applied it already.
    check = (
        "from aiokafka.conn import AIOKafkaConnection;"
        "from oms_kit import Connection;"
        "assert AIOKafkaConnection.send.__name__ == 'send', 'guarded before the kit was used';"
        "Connection('127.0.0.1:1', 'warehouses', 'not-used').broker();"
        "assert AIOKafkaConnection.send.__name__ == 'send_guarded'"
    )
    result = subprocess.run([sys.executable, "-c", check], check=False, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
