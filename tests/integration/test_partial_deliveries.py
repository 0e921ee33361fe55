"""An order shipped in part while units wait for stock is not delivered when its first parcel arrives: it is
delivered once the rest has arrived too (or what was still to come is cancelled).
Found by the chaos run: such orders ended `delivered` (final) while allocation still held units waiting for them."""

import uuid
from typing import Any

from tests.factories import order_document
from tests.local import client
from tests.scenario import mail_for, seed, wait_status
from tests.waiting import eventually


def steps(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["status"], s["order_status"]) for s in view["timeline"]]


async def test_the_first_parcel_delivered_while_a_unit_waits_leaves_the_order_partly_shipped_until_the_rest_arrives(
    http,
) -> None:
    # given one unit in stock of the two an order asks for
    sku = f"P-{uuid.uuid4().hex[:10]}"
    await seed([("ams", sku, 1)])
    order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]

    # when the unit in stock ships and its parcel is delivered
    view = await wait_status(http, order_id, {"partially_shipped"})
    view = await eventually(
        lambda: http.get(f"/v1/orders/{order_id}"),
        lambda r: ("partially_delivered", "partially_shipped") in steps(r.json()),
    )

    # then the order is not delivered: the waiting unit is still to come
    assert view.json()["status"] == "partially_shipped"

    # when the waiting unit is received, ships and arrives
    await client.publish_receipts([("ams", sku, 1)], reference=f"receipt-{uuid.uuid4()}")
    done = await wait_status(http, order_id, {"delivered"})

    # then the order is delivered, and the customer was told so once
    assert ("delivered", "delivered") in steps(done)
    await eventually(lambda: mail_for(order_id).count("delivered"), lambda n: n == 1)


async def test_cancelling_what_still_waits_after_every_parcel_arrived_delivers_the_order(http) -> None:
    # given an order whose parcel (one SKU) arrived while the other SKU still waits for stock
    shipped, waiting = f"P-{uuid.uuid4().hex[:10]}", f"P-{uuid.uuid4().hex[:10]}"
    await seed([("fra", shipped, 1), ("fra", waiting, 0)])
    document = order_document([(shipped, 1), (waiting, 1)], country="DE")
    order_id = (await http.post("/v1/orders", json=document)).json()["order_id"]
    await eventually(
        lambda: http.get(f"/v1/orders/{order_id}"),
        lambda r: ("partially_delivered", "partially_shipped") in steps(r.json()),
    )

    # when the customer cancels what still waits
    response = await http.post(f"/v1/orders/{order_id}/cancel", json={"lines": [{"sku": waiting, "quantity": 1}]})
    assert response.status_code == 202, response.text

    # then nothing is left to come and the order is delivered
    view = await wait_status(http, order_id, {"delivered"})
    assert view["cancelled"][waiting] == view["shipped"][shipped] == 1
