"""A small client of the running pipeline for the demo and the tests: publish reference data the way
a catalogue or a warehouse system would, and wait for consumer groups to catch up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.backbone import kafka_access, ports
from shared.contracts import topics

CAPTURE_URL = f"http://127.0.0.1:{ports.HTTP['capture']}"


async def publish(
    topic: str, items: Iterable[tuple[str, dict[str, Any] | bytes]], headers: list[tuple[str, bytes]] | None = None
) -> None:
    """Publish bare records (as an outside party does) and wait until the broker has them all."""
    # As the topic's writer would: the outside party, or the service a test stands in for.
    writer = kafka_access.local(kafka_access.principal(topics.BY_NAME[topic].writer))
    producer = AIOKafkaProducer(**writer.client_options(), enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for key, value in items:
            body = value if isinstance(value, bytes) else json.dumps(value).encode()
            futures.append(await producer.send(topic, body, key=key.encode(), headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_products(skus: Iterable[str], *, active: bool = True) -> None:
    await publish(
        topics.CATALOG_PRODUCTS.name,
        [(sku, {"sku": sku, "name": f"Product {sku}", "weight_grams": 450, "active": active}) for sku in skus],
    )


async def publish_receipts(receipts: Iterable[tuple[str, str, int]], reference: str) -> None:
    """(warehouse, sku, quantity) lines of one goods receipt, sent line by line under its receipt number."""
    await publish(
        topics.INVENTORY_ADJUSTMENTS.name,
        [
            (
                f"{wh}:{sku}",
                {"warehouse_id": wh, "sku": sku, "kind": "receipt", "quantity": qty, "reference": reference},
            )
            for wh, sku, qty in receipts
        ],
    )


async def lag(group: str, topic_names: Iterable[str]) -> int:
    """Records on these topics that the consumer group has not committed yet."""
    admin = AIOKafkaAdminClient(**kafka_access.local().client_options())
    consumer = AIOKafkaConsumer(**kafka_access.local().client_options())
    await admin.start()
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p)
            for name in topic_names
            for p in sorted(consumer.partitions_for_topic(name) or await _partitions(consumer, name))
        ]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return sum(
            ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp in partitions
        )
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def wait_caught_up(group: str, topic_names: Iterable[str], timeout: float = 60.0) -> None:
    names = list(topic_names)
    deadline = time.monotonic() + timeout
    while (remaining := await lag(group, names)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still {remaining} records behind on {names}")
        await asyncio.sleep(0.2)
