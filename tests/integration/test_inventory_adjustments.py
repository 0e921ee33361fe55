"""Receipts and counts as warehouses send them: a goods receipt line by line under its receipt number, each
line applied once; a replay of a line changes nothing, and one that contradicts the line applied before is
dead-lettered with the reason, never dropped without a trace."""

import uuid
from typing import Any

from shared.contracts import topics
from tests.integration.allocation_steps import stock
from tests.local import client
from tests.scenario import TopicReader, new_skus
from tests.waiting import eventually

ADJUSTMENTS = topics.INVENTORY_ADJUSTMENTS.name


def receipt_line(warehouse: str, sku: str, quantity: int, reference: str, kind: str = "receipt") -> dict[str, Any]:
    return {"warehouse_id": warehouse, "sku": sku, "kind": kind, "quantity": quantity, "reference": reference}


async def receive(*lines: dict[str, Any]) -> None:
    """Publish adjustment lines as the warehouse does, and wait until allocation has applied them."""
    await client.publish(ADJUSTMENTS, [(f"{line['warehouse_id']}:{line['sku']}", line) for line in lines])
    await client.wait_caught_up("oms-allocation", [ADJUSTMENTS])


async def test_a_goods_receipt_of_three_skus_under_one_receipt_number_adds_every_line(pipeline, db) -> None:
    # given three products and a goods receipt listing all three under one receipt number
    skus = new_skus(3, prefix="GR")
    await client.publish_products(skus)
    receipt = f"GR-{uuid.uuid4().hex[:10]}"

    # when the warehouse sends it line by line, as warehouses do
    await client.publish_receipts(
        [("fra", sku, quantity) for sku, quantity in zip(skus, (5, 7, 9), strict=True)], receipt
    )
    await client.wait_caught_up("oms-allocation", [ADJUSTMENTS])

    # then every line is on hand, each recorded under the receipt's own number
    assert [await stock(db, "fra", sku) for sku in skus] == [(5, 0), (7, 0), (9, 0)]
    rows = await db.fetch(
        "SELECT sku, quantity, on_hand_change FROM allocation.adjustments WHERE warehouse_id = 'fra' AND reference = $1"
        " ORDER BY sku",
        receipt,
    )
    assert [tuple(r) for r in rows] == [(skus[0], 5, 5), (skus[1], 7, 7), (skus[2], 9, 9)]


async def test_an_identical_replay_of_a_receipt_line_changes_nothing(pipeline, db) -> None:
    (sku,) = new_skus(1, prefix="GR")
    await client.publish_products([sku])
    line = receipt_line("fra", sku, 5, f"GR-{uuid.uuid4().hex[:10]}")
    await receive(line)

    async with TopicReader(topics.dead_letter_topic("allocation")) as dead_letters:
        # when the warehouse sends the same line again (a new record: the inbox cannot recognise it)
        await receive(line)

        # then the stock is as before, one adjustment is recorded, and nothing was dead-lettered
        assert await stock(db, "fra", sku) == (5, 0)
        assert (
            await db.fetchval(
                "SELECT count(*) FROM allocation.adjustments WHERE warehouse_id = 'fra' AND sku = $1", sku
            )
            == 1
        )
        assert [r for r in await dead_letters.read() if r.key == f"fra:{sku}".encode()] == []


async def test_a_replay_of_a_receipt_line_with_other_content_is_dead_lettered_with_the_reason(pipeline, db) -> None:
    (sku,) = new_skus(1, prefix="GR")
    await client.publish_products([sku])
    reference = f"GR-{uuid.uuid4().hex[:10]}"
    await receive(receipt_line("fra", sku, 5, reference))

    async with TopicReader(topics.dead_letter_topic("allocation")) as dead_letters:
        # when a line arrives under the same receipt number and SKU but says something else
        await client.publish(ADJUSTMENTS, [(f"fra:{sku}", receipt_line("fra", sku, 6, reference))])

        # then it is dead-lettered with the reason, and the stock keeps what the first line said
        (record,) = await eventually(
            lambda: _records_for(dead_letters, f"fra:{sku}"), lambda found: len(found) == 1, timeout=30
        )
    headers = dict(record.headers)
    assert headers["dlq.origin.topic"] == ADJUSTMENTS.encode()
    assert headers["dlq.reason"].decode() == (
        f"handler failed: AdjustmentConflict: {reference} for {sku} at fra was applied as a receipt of 5;"
        " this one is a receipt of 6"
    )
    assert await stock(db, "fra", sku) == (5, 0)


async def _records_for(reader: TopicReader, key: str) -> list[Any]:
    return [r for r in await reader.read() if r.key == key.encode()]
