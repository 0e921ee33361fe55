"""The shared consumer counts a batch's records, their handler time and what the handlers count only
when the batch's transaction commits; a failed batch leaves every metric as it was."""

import contextlib
import uuid

import pytest
from prometheus_client import REGISTRY, Counter

from shared.backbone.consumer import EventConsumer
from shared.backbone.kafka import Inbound, Origin
from shared.backbone.metrics import count
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.envelope import wrap
from shared.contracts.events import ProductUpserted

TOPIC = topics.CATALOG_PRODUCTS.name
HANDLED = Counter("oms_unit_test_products_handled_total", "Products a test handler saw.")


class FakeConnection:
    @contextlib.asynccontextmanager
    async def transaction(self):
        yield

    async def fetch(self, _query, event_ids):
        return [{"event_id": event_id} for event_id in event_ids]  # every id is new to the inbox


class FakePool:
    @contextlib.asynccontextmanager
    async def acquire(self):
        yield FakeConnection()


def product(sku: str) -> Inbound[ProductUpserted]:
    payload = ProductUpserted(sku=sku, name=sku, weight_grams=1, active=True)
    return Inbound(Origin(TOPIC, 0, 0, None, b"", ()), wrap(payload, producer="catalogue"), payload)


async def on_product(_conn, msgs: list[Inbound[ProductUpserted]]) -> None:
    for msg in msgs:
        assert isinstance(msg.payload, ProductUpserted)
        count(HANDLED)
        if msg.payload.sku.startswith("BROKEN"):
            raise ValueError("cannot handle this product")


def sample(name: str, service: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service, **labels}) or 0.0


@pytest.fixture
def consumer() -> EventConsumer:
    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}")
    return EventConsumer(settings, FakePool(), dead_letters=None, routes={ProductUpserted: on_product})  # type: ignore[arg-type]


async def test_a_batch_that_fails_counts_nothing(consumer) -> None:
    before = REGISTRY.get_sample_value("oms_unit_test_products_handled_total") or 0.0
    with pytest.raises(ValueError, match="cannot handle"):
        await consumer._apply([product("GOOD-1"), product("BROKEN-1")])
    assert (REGISTRY.get_sample_value("oms_unit_test_products_handled_total") or 0.0) == before
    assert sample("oms_messages_consumed_total", consumer.service, topic=TOPIC, outcome="processed") == 0
    assert sample("oms_handler_duration_seconds_count", consumer.service, handler="on_product") == 0


async def test_a_committed_batch_counts_each_record_once(consumer) -> None:
    before = REGISTRY.get_sample_value("oms_unit_test_products_handled_total") or 0.0
    good = product("GOOD-2")
    await consumer._apply([good, good, product("GOOD-3")])  # the same event twice in one batch
    assert REGISTRY.get_sample_value("oms_unit_test_products_handled_total") == before + 2
    assert sample("oms_messages_consumed_total", consumer.service, topic=TOPIC, outcome="processed") == 2
    assert sample("oms_messages_consumed_total", consumer.service, topic=TOPIC, outcome="duplicate") == 1
    assert sample("oms_handler_duration_seconds_count", consumer.service, handler="on_product") == 1  # one call
