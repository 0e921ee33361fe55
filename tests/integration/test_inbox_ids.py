"""The inbox on the real stack: a record of a recreated topic is not taken for one processed in the topic's
earlier life."""

import json
import uuid

from aiokafka import TopicPartition

from shared.contracts import topics
from shared.contracts.envelope import EXTERNAL_EVENT_NAMESPACE
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import new_skus, seed
from tests.waiting import eventually


async def end_offset(tp: TopicPartition) -> int:
    consumer = LOCAL.access().consumer()
    await consumer.start()
    try:
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def test_an_order_where_an_earlier_life_of_the_topic_had_a_processed_record_is_taken_in(pipeline, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    tp = TopicPartition(topics.ORDERS_SUBMITTED.name, 5)
    document = order_document([(sku, 1)])
    producer = LOCAL.access().producer()
    await producer.start()
    try:
        # given capture processed, before the topic was deleted and created again, the record that sat where
        # the next order will land (its id derived from topic, partition and offset, as ids used to be)
        end = await end_offset(tp)
        earlier_life = uuid.uuid5(EXTERNAL_EVENT_NAMESPACE, f"{tp.topic}/{tp.partition}/{end}")
        await db.execute("INSERT INTO capture.processed_events (event_id) VALUES ($1)", earlier_life)

        # when a new order lands at that position
        key = f"{document['channel']}:{document['external_id']}".encode()
        sent = await producer.send_and_wait(tp.topic, json.dumps(document).encode(), key=key, partition=tp.partition)
        assert sent.offset == end
    finally:
        await producer.stop()

    # then it is taken in, not skipped as a duplicate
    status = await eventually(
        lambda: db.fetchval("SELECT status FROM capture.orders WHERE external_id = $1", document["external_id"]),
        lambda found: found is not None,
    )
    assert status != "received"


async def test_processed_ids_older_than_the_retention_are_pruned_and_recent_ones_kept(pipeline, db) -> None:
    capture = pipeline["capture"]
    # given ids capture processed 15 days ago (past the 14-day retention) and yesterday
    old = [uuid.uuid4() for _ in range(3)]
    recent = uuid.uuid4()
    await db.execute(
        "INSERT INTO capture.processed_events (event_id, processed_at)"
        " SELECT unnest($1::uuid[]), now() - interval '15 days'",
        old,
    )
    await db.execute(
        "INSERT INTO capture.processed_events (event_id, processed_at) VALUES ($1, now() - interval '1 day')", recent
    )
    # when capture starts (it prunes at start, then periodically), in batches of 2
    capture.stop()
    capture.env = {"OMS_INBOX_PRUNE_BATCH": "2"}
    capture.start()
    try:
        capture.wait_ready()
        # then the old ids go and the recent one stays: a redelivery within the window is still recognised
        remaining = await eventually(
            lambda: db.fetch(
                "SELECT event_id FROM capture.processed_events WHERE event_id = ANY($1::uuid[])", [*old, recent]
            ),
            lambda rows: len(rows) == 1,
        )
        assert [r["event_id"] for r in remaining] == [recent]
    finally:
        capture.stop()
        capture.env = {}
        capture.start()
    capture.wait_ready()
