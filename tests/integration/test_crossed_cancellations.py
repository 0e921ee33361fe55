"""A partial cancellation that crosses the allocation of the shipment holding its lines: fulfillment accepts it
before the shipment reaches it (so withdraws nothing), allocation cannot take the units from the backorder, and asks
fulfillment to withdraw them from that shipment; the lines are cancelled and the rest of the order ships.
Found by the chaos run: such orders stayed allocated for good, their cancelled lines reserved and never picked."""

import uuid

from shared.contracts import events as ev
from tests.factories import order_document
from tests.integration.allocation_steps import (
    allocation_order,
    assert_books_balance,
    open_shipment,
    publish_from_fulfillment,
    shipments,
)
from tests.scenario import seed, wait_status
from tests.waiting import eventually


async def test_a_partial_cancellation_accepted_before_its_shipment_reached_fulfillment_cancels_those_lines(
    http, db
) -> None:
    # given an order whose two lines are reserved in one shipment at Amsterdam (warehouses never pick HOLD- SKUs)
    held, other = f"HOLD-{uuid.uuid4().hex[:12]}", f"X-{uuid.uuid4().hex[:12]}"
    await seed([("ams", held, 5), ("ams", other, 5)])
    order_id = (await http.post("/v1/orders", json=order_document([(held, 2), (other, 1)]))).json()["order_id"]
    shipment = await open_shipment(db, order_id, "ams")

    # when fulfillment had accepted a cancellation of the held line before it saw that shipment (nothing withdrawn)
    crossed = ev.CancellationAccepted(
        order_id=uuid.UUID(order_id),
        lines=[ev.ItemQuantity(sku=held, quantity=2)],
        withdrawn_shipments=[],
        reason="crossed the allocation",
    )
    await publish_from_fulfillment(crossed, uuid.UUID(order_id))

    # then the shipment is withdrawn after all, the held line cancelled, and the other line ships in a new one
    view = await wait_status(http, order_id, {"delivered"}, timeout=60)
    assert view["cancelled"][held] == 2 and view["shipped"][other] == 1
    assert (await allocation_order(db, order_id, {"allocated"}))["cancelled"] == {held: 2}
    task = await eventually(
        lambda: db.fetchval("SELECT status FROM fulfillment.pick_tasks WHERE pick_task_id = $1", shipment),
        lambda status: status == "cancelled",
    )
    assert task == "cancelled"
    rows = await shipments(db, order_id)
    assert ("ams", held, 2, 0, "released") in rows and ("ams", other, 1, 0, "shipped") in rows
    await assert_books_balance(db, [held, other])
