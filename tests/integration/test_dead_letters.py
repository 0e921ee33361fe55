"""Poison records on the intake topic go to the dead-letter topic with reason and origin; the partition
keeps flowing."""

import json

from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import TopicReader, new_skus, seed
from tests.waiting import eventually


async def test_garbage_is_dead_lettered_with_reason_and_origin_and_later_orders_still_flow(pipeline, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    wrong_schema = order_document([(sku, 1)])
    del wrong_schema["currency"]
    valid = order_document([(sku, 1)], channel="marketplace")
    key = "marketplace:poison-test"  # one key: everything lands on one partition, in this order
    async with TopicReader(topics.dead_letter_topic("capture")) as dead_letters:
        await client.publish(
            topics.ORDERS_SUBMITTED.name,
            [
                (key, b"this is not json {"),
                (key, json.dumps(wrong_schema).encode()),
                (key, json.dumps({**valid, "padding": "x" * 300_000}).encode()),
                (key, valid),
            ],
        )
        records = await eventually(dead_letters.read, lambda seen: len(seen) >= 3)

    reasons = [dict(r.headers)["dlq.reason"].decode() for r in records]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "schema: currency: Field required"
    assert reasons[2].startswith("oversized: ")
    for record in records:
        headers = dict(record.headers)
        assert headers["dlq.origin.topic"] == topics.ORDERS_SUBMITTED.name.encode()
        assert headers["dlq.service"] == b"capture"
        assert record.key == key.encode()
    offsets = [int(dict(r.headers)["dlq.origin.offset"]) for r in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3
    assert records[0].value == b"this is not json {"

    # and the valid order published after the garbage was taken in and validated
    status = await eventually(
        lambda: db.fetchval(
            "SELECT status FROM capture.orders WHERE channel = 'marketplace' AND external_id = $1",
            valid["external_id"],
        ),
        lambda s: s is not None,
    )
    assert status != "received"
