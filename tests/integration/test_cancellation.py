"""Cancel requests at capture: passed on to fulfillment before shipment (once, however often repeated),
refused after it, and the order's status and timeline once allocation reports the cancellation.

Withdrawing pick tasks and releasing stock are fulfillment's and allocation's side of the flow; where this
test needs their outcome it publishes their event itself, in its envelope, as they would."""

import json
import uuid
from typing import Any

from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import TopicReader, mail_for, new_skus, publish_event, seed, wait_status
from tests.waiting import eventually


async def backordered_order(http, lines: list[tuple[str, int]]) -> str:
    response = await http.post("/v1/orders", json=order_document(lines))
    order_id: str = response.json()["order_id"]
    await wait_status(http, order_id, {"backordered"})
    return order_id


async def cancellations_for(reader: TopicReader, order_id: str) -> list[dict[str, Any]]:
    return [b["payload"] for b in await reader.bodies_for(order_id) if b["type"] == "OrderCancellationRequested"]


async def test_cancel_before_shipment_is_passed_on_once_and_the_order_ends_cancelled(http, db) -> None:
    # given two orders waiting for stock (none in any warehouse)
    (sku,) = new_skus(1)
    await seed([("ams", sku, 0)])
    order_id = await backordered_order(http, [(sku, 2)])
    other_id = await backordered_order(http, [(sku, 1)])

    async with TopicReader(topics.ORDER_CANCELLATIONS.name) as cancellations:
        # when the customer cancels, and the request is repeated
        first = await http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "changed my mind"})
        again = await http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "changed my mind"})
        # and another order is cancelled afterwards (its event marks how far the topic has been read)
        assert (await http.post(f"/v1/orders/{other_id}/cancel")).status_code == 202

        # then both requests are answered 202, the repeat as a duplicate
        assert first.status_code == 202
        assert first.json() == {
            "order_id": order_id,
            "status": "backordered",
            "cancellation": "requested",
            "duplicate": False,
        }
        assert again.status_code == 202 and again.json()["duplicate"] is True
        # and fulfillment is asked exactly once
        await eventually(lambda: cancellations_for(cancellations, other_id), bool)
        (requested,) = await cancellations_for(cancellations, order_id)
        assert (requested["lines"], requested["reason"]) == (None, "changed my mind")
        record = next(r for r in cancellations.seen if json.loads(r.value)["order_id"] == order_id)
        assert record.key == order_id.encode()
    assert (
        await db.fetchval("SELECT count(*) FROM capture.cancel_requests WHERE order_id = $1", uuid.UUID(order_id)) == 1
    )

    # when allocation reports the order cancelled (after fulfillment withdrew what it had)
    await publish_event(
        topics.ALLOCATION_EVENTS,
        ev.OrderCancelled(order_id=uuid.UUID(order_id), reason="changed my mind"),
        uuid.UUID(order_id),
    )

    # then the order is cancelled, the timeline says when and why, and the customer is told
    view = await wait_status(http, order_id, {"cancelled"})
    steps = [(step["status"], step["detail"], step["order_status"]) for step in view["timeline"]]
    assert ("cancellation_requested", "changed my mind; whole order (via api)", "backordered") in steps
    assert ("cancelled", "changed my mind", "cancelled") in steps
    assert view["cancelled"] == {sku: 2}
    assert "cancelled" in await eventually(lambda: mail_for(order_id), lambda kinds: "cancelled" in kinds)

    # and a new request for a cancelled order is refused
    late = await http.post(f"/v1/orders/{order_id}/cancel", json={"lines": [{"sku": sku, "quantity": 1}]})
    assert late.status_code == 409
    assert late.json()["reasons"] == ["the order is already cancelled"]


async def test_cancel_after_delivery_is_refused_with_409_and_a_channel_request_is_refused_in_the_timeline(http) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    document = order_document([(sku, 1)])
    order_id = (await http.post("/v1/orders", json=document)).json()["order_id"]
    await wait_status(http, order_id, {"delivered"})

    response = await http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "too late"})

    assert response.status_code == 409
    assert response.json()["detail"] == "the order was delivered and can no longer be cancelled"
    assert response.json()["status"] == "delivered"

    # the same from the channel's cancel topic: nothing to answer, so the refusal goes into the timeline
    request = {"channel": document["channel"], "external_id": document["external_id"], "reason": "too late"}
    await client.publish(topics.CANCEL_REQUESTS.name, [(f"{document['channel']}:{document['external_id']}", request)])
    view = await eventually(
        lambda: http.get(f"/v1/orders/{order_id}"),
        lambda r: any(s["status"] == "cancellation_refused" for s in r.json()["timeline"]),
    )
    refused = next(s for s in view.json()["timeline"] if s["status"] == "cancellation_refused")
    assert (refused["detail"], refused["order_status"]) == (
        "the order was delivered and can no longer be cancelled",
        "delivered",
    )
    assert view.json()["status"] == "delivered"


async def test_a_channel_cancel_request_for_some_lines_is_passed_on_with_those_lines(http) -> None:
    a, b = new_skus(2)
    await seed([("ams", a, 0), ("ams", b, 0)])
    document = order_document([(a, 2), (b, 1)])
    order_id = (await http.post("/v1/orders", json=document)).json()["order_id"]
    await wait_status(http, order_id, {"backordered"})
    request = {
        "channel": document["channel"],
        "external_id": document["external_id"],
        "lines": [{"sku": a, "quantity": 1}],
        "reason": "one is enough",
    }
    async with TopicReader(topics.ORDER_CANCELLATIONS.name) as cancellations:
        await client.publish(
            topics.CANCEL_REQUESTS.name, [(f"{document['channel']}:{document['external_id']}", request)]
        )
        (requested,) = await eventually(lambda: cancellations_for(cancellations, order_id), bool)
    assert (requested["lines"], requested["reason"]) == ([{"sku": a, "quantity": 1}], "one is enough")
    view = (await http.get(f"/v1/orders/{order_id}")).json()
    assert view["cancellations"][0]["source"] == document["channel"]
    assert view["status"] == "backordered"


async def test_cancel_requests_that_do_not_fit_are_refused_with_reasons(http, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 0)])
    order_id = await backordered_order(http, [(sku, 2)])

    unknown = await http.post(f"/v1/orders/{uuid.uuid4()}/cancel")
    too_many = await http.post(
        f"/v1/orders/{order_id}/cancel",
        json={"lines": [{"sku": sku, "quantity": 3}, {"sku": "NOT-ORDERED", "quantity": 1}]},
    )
    malformed = await http.post(f"/v1/orders/{order_id}/cancel", json={"lines": [{"sku": sku, "quantity": 0}]})

    assert unknown.status_code == 404
    assert too_many.status_code == 422
    assert too_many.json()["reasons"] == [f"{sku}: cancel 3, only 2 ordered", "NOT-ORDERED: not in this order"]
    assert malformed.status_code == 422
    assert (
        await db.fetchval("SELECT count(*) FROM capture.cancel_requests WHERE order_id = $1", uuid.UUID(order_id)) == 0
    )
