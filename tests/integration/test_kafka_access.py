"""Kafka authenticates every client (SCRAM) and lets each principal do only what the topic registry gives it:
a service writes its own topics and reads its inputs in its own group; an outside party writes what it is
the writer of. Anything else is refused by the broker."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from shared.backbone import kafka_access
from shared.backbone.kafka import encode, partitions
from shared.backbone.kafka_access import Access
from shared.backbone.peak import (
    Clients,
    OrderPathWatch,
    PathReports,
    order_path_backlog,
    read_reports,
)
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.envelope import wrap
from shared.contracts.events import IntakeQueueMeasured
from tests.local import LOCAL


async def produce(access: Access, topic: str) -> None:
    producer = AIOKafkaProducer(**access.client_options(), request_timeout_ms=10000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"access-test")
    finally:
        await producer.stop()


async def consume(access: Access, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(topic, **access.client_options(), group_id=group, auto_offset_reset="latest")
    try:
        await consumer.start()
        for _ in range(20):  # the refusal comes with the group join or the first fetch
            await consumer.getmany(timeout_ms=250)
    finally:
        await consumer.stop()


def as_(name: str) -> Access:
    return LOCAL.access(name)


@pytest.mark.parametrize(
    ("principal", "topic"),
    [
        ("allocation", topics.ORDERS_VALIDATED.name),  # capture's topic
        ("notifications", topics.PICK_TASKS.name),  # fulfillment's topic
        ("capture", topics.INVENTORY_ADJUSTMENTS.name),  # the warehouses' topic
        ("channel-adapters", topics.ALLOCATION_EVENTS.name),  # a service's topic
        ("warehouses", topics.ORDERS_SUBMITTED.name),  # the channel adapters' topic
        ("carriers", "oms.dead-letter.fulfillment"),  # another party's dead-letter topic
        ("notifications", topics.INTAKE_QUEUE.name),  # capture's count of orders waiting at its HTTP intake
    ],
)
async def test_a_principal_may_not_write_a_topic_it_is_not_the_writer_of(stack, principal, topic) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(as_(principal), topic)


@pytest.mark.parametrize(
    ("principal", "topic"),
    [
        ("notifications", topics.WAREHOUSE_EVENTS.name),
        ("allocation", topics.ORDERS_REJECTED.name),
        ("warehouses", topics.ORDERS_VALIDATED.name),
        ("carriers", topics.PICK_TASKS.name),
    ],
)
async def test_a_principal_may_not_read_a_topic_that_is_not_its_input(stack, principal, topic) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await consume(as_(principal), topic, kafka_access.consumer_group(principal))


async def test_a_service_reads_its_inputs_but_not_in_another_services_group(stack) -> None:
    # reading its input is allowed (partitions assigned by hand: the service's own group is not disturbed)
    consumer = AIOKafkaConsumer(**as_("allocation").client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topics.INVENTORY_ADJUSTMENTS.name, 0)])
        await consumer.seek_to_end()
        await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()
    # joining another service's group is not
    with pytest.raises(GroupAuthorizationFailedError):
        await consume(as_("allocation"), topics.INVENTORY_ADJUSTMENTS.name, "oms-fulfillment")


async def test_writers_write_their_own_topics(stack) -> None:
    await produce(as_("warehouses"), topics.INVENTORY_ADJUSTMENTS.name)
    await produce(as_("channel-adapters"), topics.ORDERS_SUBMITTED.name)
    await produce(as_("allocation"), "oms.dead-letter.allocation")


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(stack) -> None:
    wrong = Access(as_("capture").bootstrap, "capture", "not-its-password")
    with pytest.raises(KafkaError):
        await produce(wrong, topics.ORDERS_VALIDATED.name)
    plain = AIOKafkaProducer(bootstrap_servers=as_("capture").bootstrap, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await plain.start()
    await plain.stop()


async def test_capture_may_measure_the_order_paths_backlog_and_no_other_service_may(stack) -> None:
    """What the watch of shared/backbone/peak.py reads where it measures, and that only capture may."""
    capture = await Clients.started(as_("capture"), timeout=10, measuring=True)
    notifications = as_("notifications").admin(request_timeout_ms=10000)
    await notifications.start()
    try:
        assert capture.admin is not None
        # the path groups' committed offsets and their topics' end offsets: refused (raises) without the grants
        coordinators: dict[str, int] = {}
        path = topics.ORDER_PATH.values()
        described = await partitions(capture.admin, [topic.name for topic in path])
        assert described == sorted(TopicPartition(topic.name, p) for topic in path for p in range(topic.partitions))
        await order_path_backlog(capture.admin, capture.offsets, coordinators, described)
        assert set(coordinators) == {kafka_access.consumer_group(s) for s in topics.ORDER_PATH}
        with pytest.raises(GroupAuthorizationFailedError):  # no other group's
            await capture.admin.list_consumer_group_offsets("oms-returns")
        with pytest.raises(GroupAuthorizationFailedError):  # the other services read capture's reports instead
            await notifications.list_consumer_group_offsets("oms-capture")
    finally:
        await notifications.close()
        await capture.close()


async def test_every_service_reads_captures_reports_of_the_order_path_without_a_group(stack) -> None:
    """Capture's report (shared/backbone/peak.OrderPathWatch) reaches another service's watch from the broker."""
    clients = await Clients.started(as_("kpis"), timeout=10)  # assigned the reports' topic, from its end on
    capture = as_("capture").producer()
    await capture.start()
    try:
        instance = f"capture-access-test-{time.monotonic_ns()}"
        measured = IntakeQueueMeasured(instance=instance, waiting=7, unread=3)  # below the marks: nothing waits
        await capture.send_and_wait(topics.INTAKE_QUEUE.name, b"not a report", key=instance.encode())  # passed over
        await capture.send_and_wait(topics.INTAKE_QUEUE.name, encode(wrap(measured)), key=instance.encode())
        reports = PathReports(fresh_seconds=60)
        deadline = time.monotonic() + 15
        while instance not in reports.latest and time.monotonic() < deadline:
            await read_reports(clients.reports, reports, max_bytes=1_000_000)
            await asyncio.sleep(0.05)
        assert reports.latest[instance][0] == measured
    finally:
        await capture.stop()
        await clients.close()


async def test_what_captures_watch_measures_on_the_broker_reaches_another_services_watch(stack) -> None:
    """The watch of shared/backbone/peak.py end to end on the broker: capture's look measures the path groups' lag
    with its own grants and reports it; a watch of a service with no such grant learns it from the report."""
    instance = f"watch-test-{time.monotonic_ns()}"
    producer = as_("capture").producer()
    capture = OrderPathWatch(CommonSettings(service="capture", instance=instance), lambda: producer, lambda: 4)
    kpis = OrderPathWatch(CommonSettings(service="kpis"))
    reading = await Clients.started(as_("kpis"), timeout=10)  # from the reports' end on, before capture reports
    measuring = await Clients.started(as_("capture"), timeout=10, measuring=True)
    await producer.start()
    try:
        await capture.look(measuring)  # the first look learns the pace records arrive at; the next reports
        await capture.look(measuring)
        measured, _ = capture.reports.latest[f"capture-{instance}"]
        assert measured.waiting == 4 and measured.unread is not None
        deadline = time.monotonic() + 15
        while f"capture-{instance}" not in kpis.reports.latest and time.monotonic() < deadline:
            await kpis.look(reading)  # waits up to a look for the next report
        assert kpis.reports.latest[f"capture-{instance}"][0] == measured
    finally:
        await producer.stop()
        await measuring.close()
        await reading.close()
