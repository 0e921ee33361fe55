"""Permanent failures take the dead-letter path instead of blocking their partition: a record whose
dead-letter copy grows past the producer's limit is kept in the service's table (and replayed from there),
and a statement that always times out is dead-lettered once classified, while the records behind it flow."""

import json
import uuid
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from deploy.cli import dlq as cli_dlq
from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL, client
from tests.scenario import TopicReader, new_skus, seed
from tests.waiting import eventually

# The producer's default max_request_size: what the old dead-letter path failed on, forever.
PRODUCER_LIMIT = 1_048_576


def padded_to(document: dict[str, Any], key: bytes, size: int) -> bytes:
    """The document as JSON, padded with whitespace (still valid JSON) so the record takes `size` bytes."""
    body = json.dumps(document).encode()
    taken: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, body, [])
    return body + b" " * (size - taken)


async def test_a_record_too_large_for_the_dead_letter_topic_is_kept_in_the_table_and_replayed_after_the_fix(
    pipeline, db
) -> None:
    capture = pipeline["capture"]
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    # given an order within the producer's limit, but not once the dead-letter headers (~230 bytes) are
    # added, while a replay's headers (~140 bytes) still fit; capture refuses it (over its 256 KiB limit)
    huge = order_document([(sku, 1)], channel="b2b")
    key = f"b2b:{huge['external_id']}"
    value = padded_to(huge, key.encode(), PRODUCER_LIMIT - 185)
    follower = order_document([(sku, 1)], channel="b2b")
    async with TopicReader(topics.dead_letter_topic("capture")) as dead_letter_topic:
        # when it is published, followed by an order on the same partition
        await client.publish(topics.ORDERS_SUBMITTED.name, [(key, value), (key, follower)])

        # then the original is kept in capture's dead_letters table, with a small pointer in the topic
        stored = await eventually(
            lambda: db.fetchrow(
                "SELECT id, key, value, reason, origin_offset FROM capture.dead_letters WHERE key = $1", key.encode()
            ),
            lambda row: row is not None,
        )
        assert stored["value"] == value
        assert stored["reason"].startswith("oversized: ")
        assert "kept in capture.dead_letters" in stored["reason"]
        pointers = await eventually(
            dead_letter_topic.read, lambda seen: any(r.key == key.encode() for r in seen), timeout=30
        )
        (pointer,) = [r for r in pointers if r.key == key.encode()]
        assert pointer.value is None
        assert dict(pointer.headers)["dlq.stored"] == f"capture.dead_letters:{stored['id']}".encode()

    # and the order behind it was taken in: the partition kept flowing
    await eventually(
        lambda: db.fetchval("SELECT status FROM capture.orders WHERE external_id = $1", follower["external_id"]),
        lambda status: status is not None,
    )
    # and the operator sees it among the dead letters, once
    letter_id = f"capture.dead_letters:{stored['id']}"
    listing = await cli_dlq.listing(LOCAL, topics.ORDERS_SUBMITTED.name)
    listed = [d for d in listing.pending() if d.key == key.encode()]
    assert [d.id for d in listed] == [letter_id]
    assert listed[0].summary(False)["stored"] and listed[0].origin.endswith(f":{stored['origin_offset']}")

    # when capture takes larger orders (the fix) and the dead letter is replayed from the table
    capture.stop()
    capture.env = {"OMS_MAX_BODY_BYTES": str(PRODUCER_LIMIT)}
    capture.start()
    try:
        capture.wait_ready()
        (done,) = await cli_dlq.replay(LOCAL, listed)
        assert done["id"] == letter_id and done["replayed_to"].startswith(topics.ORDERS_SUBMITTED.name)
        # then the order is taken in, and the row is marked replayed
        await eventually(
            lambda: db.fetchval("SELECT status FROM capture.orders WHERE external_id = $1", huge["external_id"]),
            lambda status: status is not None,
        )
        assert (
            await db.fetchval("SELECT replayed_to FROM capture.dead_letters WHERE id = $1", stored["id"])
            == (done["replayed_to"])
        )
        assert letter_id not in {d.id for d in (await cli_dlq.listing(LOCAL, topics.ORDERS_SUBMITTED.name)).pending()}
    finally:
        capture.stop()
        capture.env = {}
        capture.start()
    capture.wait_ready()


async def test_a_statement_that_always_times_out_is_dead_lettered_and_the_partition_flows(pipeline, db) -> None:
    allocation = pipeline["allocation"]
    blocked_sku, other_sku = new_skus(2)
    await seed([("ams", blocked_sku, 5), ("ams", other_sku, 5)])
    # given allocation with a 1 s statement timeout and no separate lock timeout, so a lock wait ends as a
    # statement timeout (57014), which no retry can cure while the lock is held
    allocation.stop()
    allocation.env = {"OMS_DB_STATEMENT_TIMEOUT_MS": "1000", "OMS_DB_LOCK_TIMEOUT_MS": "0"}
    allocation.start()
    holder = await db.acquire()
    try:
        allocation.wait_ready()
        key = f"ams:{blocked_sku}"  # both receipts on one partition, the blocked one first
        receipt = {"warehouse_id": "ams", "kind": "receipt", "quantity": 3}
        async with TopicReader(topics.dead_letter_topic("allocation")) as dead_letters:
            # and the stock row the first receipt needs held by someone else for as long as it takes
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute(
                "SELECT 1 FROM allocation.stock WHERE warehouse_id = 'ams' AND sku = $1 FOR UPDATE", blocked_sku
            )
            # when a receipt for it arrives, followed by a receipt for another SKU
            await client.publish(
                topics.INVENTORY_ADJUSTMENTS.name,
                [
                    (key, {**receipt, "sku": blocked_sku, "reference": f"blocked-{uuid.uuid4()}"}),
                    (key, {**receipt, "sku": other_sku, "reference": f"other-{uuid.uuid4()}"}),
                ],
            )
            # then the blocked one is dead-lettered as a statement timeout, not retried for good
            records = await eventually(
                dead_letters.read, lambda seen: any(r.key == key.encode() for r in seen), timeout=45
            )
            (letter,) = [r for r in records if r.key == key.encode()]
            assert json.loads(letter.value)["sku"] == blocked_sku
            assert dict(letter.headers)["dlq.reason"] == (
                b"handler failed: QueryCanceledError: canceling statement due to statement timeout"
            )
            # and the receipt behind it is applied while the lock is still held
            await eventually(
                lambda: db.fetchval(
                    "SELECT on_hand FROM allocation.stock WHERE warehouse_id = 'ams' AND sku = $1", other_sku
                ),
                lambda on_hand: on_hand == 8,
            )
            await transaction.rollback()
        assert (
            await db.fetchval(
                "SELECT on_hand FROM allocation.stock WHERE warehouse_id = 'ams' AND sku = $1", blocked_sku
            )
            == 5
        )
    finally:
        await db.release(holder)
        allocation.stop()
        allocation.env = {}
        allocation.start()
    allocation.wait_ready()
