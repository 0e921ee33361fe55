"""Another reader's events on a topic a service reads change nothing in it: they are counted as not for it, never
claimed in its inbox, and a batch of only those takes no database connection at all."""

import contextlib
import uuid

import pytest
from prometheus_client import REGISTRY

from shared.backbone.consumer import EventConsumer
from shared.backbone.kafka import Inbound, Origin
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.envelope import wrap
from shared.contracts.events import InventoryAdjusted, ProductUpserted


class Inbox:
    """A pool of one connection that remembers the event ids claimed and how often it was taken."""

    def __init__(self) -> None:
        self.claimed: list[uuid.UUID] = []
        self.acquired = 0

    @contextlib.asynccontextmanager
    async def acquire(self):
        self.acquired += 1
        yield self

    @contextlib.asynccontextmanager
    async def transaction(self):
        yield

    async def fetch(self, _query, event_ids):
        self.claimed.extend(event_ids)
        return [{"event_id": event_id} for event_id in event_ids]


def product(sku: str) -> Inbound[ProductUpserted]:
    payload = ProductUpserted(sku=sku, name=sku, weight_grams=1, active=True)
    return Inbound(
        Origin(topics.CATALOG_PRODUCTS.name, 0, 0, None, b"", ()), wrap(payload, producer="catalogue"), payload
    )


def adjustment(reference: str) -> Inbound[InventoryAdjusted]:
    payload = InventoryAdjusted(warehouse_id="ams", sku="SKU-1", kind="receipt", quantity=1, reference=reference)
    origin = Origin(topics.INVENTORY_ADJUSTMENTS.name, 0, 0, None, b"", ())
    return Inbound(origin, wrap(payload, producer="warehouses"), payload)


def consumed(consumer: EventConsumer, topic: str, outcome: str) -> float:
    labels = {"service": consumer.service, "topic": topic, "outcome": outcome}
    return REGISTRY.get_sample_value("oms_messages_consumed_total", labels) or 0.0


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def consumer_of_products(inbox: Inbox, handled: list[str]) -> EventConsumer:
    async def on_products(_conn, records: list[Inbound[ProductUpserted]]) -> None:
        handled.extend(r.payload.sku for r in records)
        if any(r.payload.sku.startswith("BROKEN") for r in records):
            raise ValueError("cannot handle this product")

    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}")
    return EventConsumer(settings, inbox, dead_letters=None, routes={ProductUpserted: on_products})  # type: ignore[arg-type]


async def test_a_batch_of_only_other_readers_events_takes_no_connection(inbox) -> None:
    handled: list[str] = []
    consumer = consumer_of_products(inbox, handled)
    await consumer._apply([adjustment("R-1"), adjustment("R-2")])
    assert (inbox.acquired, inbox.claimed, handled) == (0, [], [])
    assert consumed(consumer, topics.INVENTORY_ADJUSTMENTS.name, "not_for_us") == 2


async def test_only_the_services_own_events_are_claimed_in_its_inbox(inbox) -> None:
    handled: list[str] = []
    consumer = consumer_of_products(inbox, handled)
    mine = product("SKU-1")
    await consumer._apply([adjustment("R-1"), mine, adjustment("R-2")])
    assert (inbox.claimed, handled) == ([mine.event_id], ["SKU-1"])
    assert consumed(consumer, topics.INVENTORY_ADJUSTMENTS.name, "not_for_us") == 2
    assert consumed(consumer, topics.CATALOG_PRODUCTS.name, "processed") == 1


async def test_a_batch_that_fails_counts_its_other_readers_events_only_when_retried_alone(inbox) -> None:
    consumer = consumer_of_products(inbox, [])
    with pytest.raises(ValueError, match="cannot handle"):
        await consumer._apply([adjustment("R-1"), product("BROKEN-1")])
    assert consumed(consumer, topics.INVENTORY_ADJUSTMENTS.name, "not_for_us") == 0
    await consumer._apply([adjustment("R-1")])  # as when the batch is split and each record handled alone
    assert consumed(consumer, topics.INVENTORY_ADJUSTMENTS.name, "not_for_us") == 1
