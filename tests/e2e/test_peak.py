"""At a peak the order path goes first, on the real broker (shared/backbone/peak.py): while the path is behind, what
follows it pauses what can wait and reads it once the path caught up, with nothing lost or doubled."""

import asyncpg

from deploy.local import scrape
from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import mail_kinds, new_skus, restart, seed, service_metrics
from tests.waiting import eventually

# Orders at once on the intake topic, and the marks notifications waits between: a peak the path takes in a second
# or two on a fast machine, whose backlog passes the default high mark (500) on some runs and not on others, passes
# 100 at any speed.
PEAK = 1500
MARKS = {"OMS_PEAK_BACKLOG_HIGH": "100", "OMS_PEAK_BACKLOG_LOW": "20"}
WAITED = "oms_yielded_to_the_order_path_seconds_total"
BACKLOG = "oms_order_path_backlog_messages"


def waited() -> float:
    """The seconds notifications' follow-up consumers have waited for the order path so far."""
    return scrape.total(service_metrics("notifications"), WAITED)


def knows_the_backlog() -> bool:
    """Whether notifications' watch has read a report of the path's backlog since it started."""
    return any(name == BACKLOG for name, _ in service_metrics("notifications"))


async def hand_in(db: asyncpg.Pool, sku: str, count: int) -> list[str]:
    """`count` orders of the SKU handed in at once by a marketplace on the intake topic, once all are delivered: their
    order ids."""
    documents = [order_document([(sku, 1)], channel="marketplace") for _ in range(count)]
    await client.publish(topics.ORDERS_SUBMITTED.name, [(f"marketplace:{d['external_id']}", d) for d in documents])
    rows = await eventually(
        lambda: db.fetch(
            "SELECT order_id::text FROM capture.orders"
            " WHERE channel = 'marketplace' AND external_id = ANY($1) AND status = 'delivered'",
            [d["external_id"] for d in documents],
        ),
        lambda found: len(found) == count,
        timeout=240,
        every=1,
    )
    return [row["order_id"] for row in rows]


async def test_at_a_peak_what_follows_waits_and_then_every_order_is_delivered_with_one_mail_of_each_kind(
    pipeline, db
) -> None:
    # given stock (on a new stack the path's groups have committed on none of their partitions yet: the peak is seen
    # all the same, as they read those partitions from their start)
    (sku,) = new_skus(1)
    await seed([("ams", sku, PEAK)])
    # and notifications waiting from a backlog of 100 records on
    notifications = pipeline["notifications"]
    await restart(notifications, MARKS)
    try:
        await eventually(knows_the_backlog, bool)  # its watch reads capture's reports: a peak can be seen
        # when a marketplace hands in a peak of orders at once, then every order is delivered
        order_ids = await hand_in(db, sku, PEAK)

        # and customer mail waited while the path was behind
        assert waited() > 0
        # and every customer got one mail of each kind, none twice
        kinds = await eventually(
            lambda: mail_kinds(order_ids),
            lambda found: sum(map(len, found.values())) >= 3 * PEAK,
            timeout=120,
            every=1,
        )
        unlike = {
            order_id: found for order_id, found in kinds.items() if found != ["confirmed", "delivered", "shipped"]
        }
        assert unlike == {}
    finally:
        await restart(notifications, {})
