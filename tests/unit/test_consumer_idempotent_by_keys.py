"""A reader whose writes are idempotent by their own keys (the KPIs) claims nothing in an inbox: its handlers take
every record of the batch, an event repeated within the batch once, and a redelivered event again (its own keys
make that harmless; tests/integration/test_kpi_day.py delivers a day's events again to show it)."""

import uuid

from shared.backbone.consumer import EventConsumer
from shared.backbone.settings import CommonSettings
from shared.contracts.events import ProductUpserted
from tests.unit.test_consumer_not_for_us import Inbox, product


def idempotent_consumer(pool: Inbox, handled: list[str]) -> EventConsumer:
    async def on_products(_conn, records) -> None:
        handled.extend(r.payload.sku for r in records)

    settings = CommonSettings(service=f"unit-{uuid.uuid4().hex[:8]}")
    return EventConsumer(
        settings,
        pool,  # type: ignore[arg-type]
        dead_letters=None,  # type: ignore[arg-type]
        routes={ProductUpserted: on_products},
        idempotent_by_keys=True,
    )


async def test_a_reader_idempotent_by_its_keys_claims_nothing_and_takes_a_repeat_within_the_batch_once() -> None:
    pool, handled = Inbox(), list[str]()
    consumer = idempotent_consumer(pool, handled)
    first, second = product("SKU-1"), product("SKU-2")
    await consumer._apply([first, second, first])
    assert (pool.claimed, handled) == ([], ["SKU-1", "SKU-2"])


async def test_a_redelivered_event_reaches_its_handler_again() -> None:
    pool, handled = Inbox(), list[str]()
    consumer = idempotent_consumer(pool, handled)
    record = product("SKU-1")
    await consumer._apply([record])
    await consumer._apply([record])
    assert (pool.claimed, handled) == ([], ["SKU-1", "SKU-1"])
