"""The order's status and timeline at capture as allocation reports on it (beyond the happy path, which the
end-to-end test follows)."""

import uuid

from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.scenario import mail_for, new_skus, publish_event, seed, wait_status
from tests.waiting import eventually


async def test_an_order_allocation_cannot_fulfil_is_rejected_with_the_reason_and_the_customer_told(http) -> None:
    # given an order that may not wait for stock, for a SKU no warehouse has
    (sku,) = new_skus(1)
    await seed([("ams", sku, 0)])
    document = order_document([(sku, 1)], backorder_policy="reject")
    order_id = (await http.post("/v1/orders", json=document)).json()["order_id"]
    await wait_status(http, order_id, {"backordered", "rejected"})

    # when allocation reports that it cannot fulfil it
    reason = f"no warehouse has {sku} x1 and the order may not wait for stock"
    await publish_event(
        topics.ALLOCATION_EVENTS,
        ev.OrderUnfulfillable(order_id=uuid.UUID(order_id), reason=reason),
        uuid.UUID(order_id),
    )

    # then the order is rejected with the reason in its reasons and its timeline, and the customer is told
    # (an allocation that applies the policy itself may have rejected it first: its reason is then the one
    # given, and the later report is recorded as a step that changes nothing)
    view = await eventually(
        lambda: http.get(f"/v1/orders/{order_id}"),
        lambda r: reason in [step["detail"] for step in r.json()["timeline"]],
    )
    view = view.json()
    rejected = [step for step in view["timeline"] if step["status"] == "rejected"]
    assert view["status"] == "rejected" and all(step["order_status"] == "rejected" for step in rejected)
    assert view["reasons"] == [rejected[0]["detail"]]
    assert "rejected" in await eventually(lambda: mail_for(order_id), lambda kinds: "rejected" in kinds)

    # and a cancel request for it is refused
    response = await http.post(f"/v1/orders/{order_id}/cancel")
    assert (response.status_code, response.json()["reasons"]) == (
        409,
        ["the order was rejected; there is nothing to cancel"],
    )
