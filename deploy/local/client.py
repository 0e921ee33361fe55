"""A small client of the running pipeline for the demo, the benchmark, `oms` and the tests: publish reference
data the way a catalogue or a warehouse system would, and tell how far consumer groups are behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.settings import LocalStack
from shared.backbone import kafka_access
from shared.backbone.kafka import partitions
from shared.contracts import topics


def records_behind(
    ends: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, Any]
) -> dict[TopicPartition, int]:
    """Per partition, the records a group has not committed yet: all of them where it committed nothing."""
    offsets = {tp: c.offset for tp, c in committed.items() if c.offset >= 0}
    return {tp: end - offsets.get(tp, 0) for tp, end in ends.items()}


@contextlib.asynccontextmanager
async def admin_client(access: kafka_access.Access) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = access.admin(request_timeout_ms=15000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def plain_consumer(access: kafka_access.Access) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer in no group: it reads by explicit assignment and commits nothing."""
    consumer = access.consumer(enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


class PipelineClient:
    """The running pipeline as the outside parties and an operator (`admin`) reach it."""

    def __init__(self, local: LocalStack) -> None:
        self.local = local

    @property
    def capture_url(self) -> str:
        return self.local.http_url("capture")

    async def publish(
        self,
        topic: str,
        items: Iterable[tuple[str, dict[str, Any] | bytes]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Publish bare records (as an outside party does) and wait until the broker has them all."""
        # As the topic's writer would: the outside party, or the service a test stands in for.
        producer = self.local.access(kafka_access.principal(topics.BY_NAME[topic].writer)).producer()
        await producer.start()
        try:
            futures = []
            for key, value in items:
                body = value if isinstance(value, bytes) else json.dumps(value).encode()
                futures.append(await producer.send(topic, body, key=key.encode(), headers=headers))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def publish_products(self, skus: Iterable[str], *, active: bool = True) -> None:
        await self.publish(
            topics.CATALOG_PRODUCTS.name,
            [(sku, {"sku": sku, "name": f"Product {sku}", "weight_grams": 450, "active": active}) for sku in skus],
        )

    async def publish_receipts(self, receipts: Iterable[tuple[str, str, int]], reference: str) -> None:
        """(warehouse, sku, quantity) lines of one goods receipt, sent line by line under its receipt number."""
        await self.publish(
            topics.INVENTORY_ADJUSTMENTS.name,
            [
                (
                    f"{wh}:{sku}",
                    {"warehouse_id": wh, "sku": sku, "kind": "receipt", "quantity": qty, "reference": reference},
                )
                for wh, sku, qty in receipts
            ],
        )

    async def lag(self, group: str, topic_names: Iterable[str]) -> int:
        """Records on these topics that the consumer group has not committed yet."""
        access = self.local.access()
        async with admin_client(access) as admin, plain_consumer(access) as consumer:
            wanted = await partitions(admin, topic_names)
            ends = await consumer.end_offsets(wanted)
            committed = await admin.list_consumer_group_offsets(group, partitions=wanted)
        return sum(records_behind(ends, committed).values())

    async def wait_caught_up(self, group: str, topic_names: Iterable[str], timeout: float = 60.0) -> None:
        names = list(topic_names)
        deadline = time.monotonic() + timeout
        while (remaining := await self.lag(group, names)) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still {remaining} records behind on {names}")
            await asyncio.sleep(0.2)
