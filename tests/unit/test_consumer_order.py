"""In what order a batch's records are handled: as they were published across partitions, each partition's own
order kept, so a cause on one topic is handled before its effect on another when one batch brings both."""

import json
import uuid

from aiokafka import TopicPartition

from shared.backbone.consumer import EventConsumer
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.events import ProductUpserted
from tests.unit.test_consumer_failures import FakeDeadLetters, FakeKafkaConsumer, FakePool, Handler, Record

TOPIC = topics.CATALOG_PRODUCTS.name
EARLY, LATE = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def published(sku: str, partition: int, offset: int, at: int) -> Record:
    body = {"sku": sku, "name": sku, "weight_grams": 1, "active": True}
    return Record(json.dumps(body).encode(), offset, partition=partition, timestamp=at)


async def test_records_of_two_partitions_are_handled_in_the_order_they_were_published() -> None:
    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}")
    pool, kafka = FakePool(), FakeKafkaConsumer()
    consumer = EventConsumer(settings, pool, FakeDeadLetters(), {ProductUpserted: Handler({})})  # type: ignore[arg-type]
    # given a batch whose first partition (as the client hands them over) holds the later records
    batches = {
        LATE: [published("EFFECT", 1, 7, at=1_000_020), published("LATE", 1, 8, at=1_000_040)],
        # a clock step back inside one partition: its own order still comes first
        EARLY: [published("CAUSE", 0, 3, at=1_000_010), published("BACK", 0, 4, at=1_000_005)],
    }

    await consumer._process(kafka, batches, consumer.reassignments.count)

    assert pool.committed == ["CAUSE", "BACK", "EFFECT", "LATE"]
    assert kafka.commits == [{LATE: 9, EARLY: 5}]
