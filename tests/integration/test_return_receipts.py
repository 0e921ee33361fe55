"""Return parcels at the warehouse on the real stack: a damaged unit quarantined is never sellable; a partial
receipt keeps the RMA open, units not on it are set aside for review, a receipt sent again changes nothing; an RMA
past its expiry closes with its reason; a parcel for an unknown RMA is dead-lettered with the reason."""

import uuid

from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.returns_steps import ask_return, delivered_order, on_hand, parcel_received, return_line, wait_return
from tests.scenario import TopicReader, mail_for, new_skus, order_view, restart, seed, wait_status
from tests.waiting import eventually


async def test_a_damaged_unit_goes_to_quarantine_and_is_never_sellable(http, db) -> None:
    # given a delivered order of the last unit of a SKU, and another customer waiting for that SKU
    (sku,) = new_skus(1, prefix="RDM")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)])
    waiting = (await http.post("/v1/orders", json=order_document([(sku, 1)]))).json()["order_id"]
    await wait_status(http, waiting, {"backordered"})

    # when the customer returns it as arrived damaged, and the warehouse quarantines it (the simulator does)
    response = await ask_return(order_id, [return_line(sku, reason="damaged.in_transit")])
    assert response.status_code == 201, response.text
    received = await wait_return(response.json()["return_id"], {"received"})
    assert [(u["disposition"], u["quantity"]) for u in received["received_units"]] == [("quarantine", 1)]

    # then the unit is counted, but not on hand: the waiting order still waits
    await client.wait_caught_up("oms-allocation", [topics.RETURN_EVENTS.name])
    assert await on_hand(db, "ams", sku) == (0, 0)
    assert (await http.get(f"/v1/orders/{waiting}")).json()["status"] == "backordered"
    assert (
        await db.fetchval("SELECT count(*) FROM allocation.adjustments WHERE sku = $1 AND kind = 'receipt'", sku) == 1
    )


async def test_a_partial_receipt_keeps_the_rma_open_sets_aside_what_is_not_on_it_and_expiry_closes_it(
    http, db, pipeline
) -> None:
    # given an authorised return of two units (the customer keeps back the parcel: KEEP, the simulator sends none)
    sku, stranger = new_skus(2, prefix="KEEP")
    await seed([("ams", sku, 2), ("ams", stranger, 1)])
    order_id = await delivered_order(http, db, [(sku, 2)])
    response = await ask_return(order_id, [return_line(sku, 2)])
    assert response.status_code == 201, response.text
    authorised = response.json()
    rma, return_id = authorised["rma"], authorised["return_id"]

    # when a parcel arrives with one of the two units and a unit of another SKU
    async with TopicReader(topics.RETURN_EVENTS.name) as events:
        receipt = await parcel_received("ams", rma, [(sku, 1, "restock"), (stranger, 1, "restock")])
        # and the warehouse sends the same receipt again
        await parcel_received("ams", rma, [(sku, 1, "restock"), (stranger, 1, "restock")], receipt=receipt)
        found = await eventually(lambda: events.bodies_for(order_id), bool)
        await client.wait_caught_up("oms-returns", [topics.WAREHOUSE_EVENTS.name])
        await client.wait_caught_up("oms-allocation", [topics.RETURN_EVENTS.name])
        found = await events.bodies_for(order_id)

    # then the RMA stays open with one unit received, restocked; the stranger is set aside, never on hand
    receipts = [b for b in found if b["type"] == "ReturnReceived"]
    assert len(receipts) == 1 and receipts[0]["payload"]["complete"] is False
    view = await wait_return(return_id, {"partially_received"})
    assert view["lines"][0]["received"] == 1
    units = sorted((u["sku"], u["quantity"], u["disposition"], u["expected"]) for u in view["received_units"])
    assert units == sorted([(sku, 1, "restock", True), (stranger, 1, "restock", False)])
    assert await on_hand(db, "ams", sku) == (1, 0)
    assert await on_hand(db, "ams", stranger) == (1, 0)  # its seed unit only
    # and the order view says the return is partially received (its refund so far does not end it), the order still
    # delivered
    order = await eventually(lambda: order_view(http, order_id), lambda v: v["refunded"] is not None)
    assert order["return_status"] == "partially_received" and order["status"] == "delivered"

    # when the RMA passes its expiry (the returns service living 31 days later, sweeping often)
    returns = pipeline["returns"]
    expires_at = view["expires_at"]
    try:
        clock = {"OMS_CLOCK_START": (await db.fetchval("SELECT now() + interval '31 days'")).isoformat()}
        await restart(returns, {**clock, "OMS_RMA_EXPIRY_SWEEP_SECONDS": "0.5"})
        # then it closes with its reason, and the customer is told
        closed = await wait_return(return_id, {"closed"})
    finally:
        await restart(returns, {})
    assert closed["closed_at"] is not None
    reason = f"expired on {expires_at[:10]}: 1 of 2 units received (parcel lost or never sent)"
    assert (await eventually(lambda: mail_for(order_id), lambda k: "return_closed" in k)).count("return_closed") == 1
    closing = await db.fetchval(
        "SELECT facts->>'reason' FROM notifications.messages WHERE order_id = $1 AND kind = 'return_closed'",
        uuid.UUID(order_id),
    )
    assert closing == reason
    # and the order view says the return is closed, the order still delivered
    order = await eventually(lambda: order_view(http, order_id), lambda v: v["return_status"] == "closed")
    assert order["status"] == "delivered"

    # and a parcel that comes after closing is recorded, but set aside, not restocked
    await parcel_received("ams", rma, [(sku, 1, "restock")])
    await client.wait_caught_up("oms-returns", [topics.WAREHOUSE_EVENTS.name])
    await client.wait_caught_up("oms-allocation", [topics.RETURN_EVENTS.name])
    late = await wait_return(return_id, {"closed"})
    assert sorted((u["quantity"], u["expected"]) for u in late["received_units"] if u["sku"] == sku) == [
        (1, False),
        (1, True),
    ]
    assert await on_hand(db, "ams", sku) == (1, 0)


async def test_a_parcel_for_an_unknown_rma_is_dead_lettered_with_the_reason(pipeline) -> None:
    rma = f"RMA-{uuid.uuid4().int % 10**9:09d}"
    async with TopicReader(topics.dead_letter_topic("returns")) as dead_letters:
        await parcel_received("fra", rma, [("ANY-SKU", 1, "restock")])
        records = await eventually(
            dead_letters.read, lambda seen: any(rma.encode() in (r.value or b"") for r in seen), timeout=60
        )
    record = next(r for r in records if rma.encode() in (r.value or b""))
    reason = dict(record.headers)["dlq.reason"].decode()
    assert reason == f"handler failed: LookupError: no return with RMA {rma}: the parcel is set aside at fra"
