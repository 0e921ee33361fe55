"""Bad supplier reports never block the suppliers' topic: a report for a purchase order that does not exist, one in
another supplier's name, and a shipment notice without a tracking number go to fulfillment's dead-letter topic with
their reasons, and the valid answer after them on the same partition is applied."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL, client
from tests.scenario import TopicReader
from tests.waiting import eventually


async def test_bad_supplier_reports_are_dead_lettered_with_reasons_and_the_next_answer_is_applied(http, db) -> None:
    # given a purchase order acme-direct answers only after 15 s (SLOW)
    sku = f"DS-ACME-SLOW-{uuid.uuid4().hex[:10]}"
    await client.publish_products({sku})
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    response = await http.post("/v1/orders", json=order_document([(sku, 1)]))
    order_id = uuid.UUID(response.json()["order_id"])
    po_id = await eventually(
        lambda: db.fetchval("SELECT purchase_order_id FROM fulfillment.purchase_orders WHERE order_id = $1", order_id),
        lambda found: found is not None,
    )

    def report(**fields: object) -> bytes:
        base = {
            "purchase_order_id": str(po_id),
            "supplier_id": "acme-direct",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        return json.dumps({**base, **fields}).encode()

    # when the supplier (its own principal) sends three bad reports and then its acknowledgement, on one partition
    key = str(po_id).encode()
    async with TopicReader(topics.dead_letter_topic("fulfillment")) as dead_letters:
        producer = LOCAL.access("suppliers").producer()
        await producer.start()
        try:
            for value in (
                report(kind="acknowledged", purchase_order_id=str(uuid.uuid4())),
                report(kind="acknowledged", supplier_id="nordic-drop"),
                report(kind="shipped", carrier="parcelnet"),
                report(kind="acknowledged"),
            ):
                await producer.send_and_wait(topics.SUPPLIER_REPORTS.name, value, key=key)
        finally:
            await producer.stop()
        records = await eventually(
            dead_letters.read, lambda seen: len([r for r in seen if r.key == key]) >= 3, timeout=30
        )

    # then each bad one is set aside with its reason and origin
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in records if r.key == key]
    # (in any order: a record that fails its schema is set aside before the batch's others are handled)
    assert len(reasons) == 3
    unknown = [r for r in reasons if "no purchase order" in r and "with supplier acme-direct" in r]
    not_theirs = [r for r in reasons if "no purchase order" in r and "with supplier nordic-drop" in r]
    no_tracking = [r for r in reasons if "carries the carrier and the tracking number" in r]
    assert (len(unknown), len(not_theirs), len(no_tracking)) == (1, 1, 1)
    assert all(
        dict(r.headers)["dlq.origin.topic"] == topics.SUPPLIER_REPORTS.name.encode() for r in records if r.key == key
    )
    # and the acknowledgement after them was applied
    outcomes = await eventually(
        lambda: db.fetch("SELECT outcome FROM fulfillment.supplier_reports WHERE purchase_order_id = $1", po_id),
        lambda rows: len(rows) >= 1,
    )
    assert outcomes[0]["outcome"] == "applied: acknowledged"
    assert await db.fetchval("SELECT status FROM fulfillment.purchase_orders WHERE purchase_order_id = $1", po_id) in (
        "acknowledged",
        "shipped",  # the simulated supplier's own (slow) answers may have followed by now
    )
