"""Priorities on the real stack (issue 11, part 2): with scarce stock, an express order placed just before the
warehouse's cut-off overtakes standard orders that were waiting before it, first come first served still holds
between the standard ones, the pick tasks carry the priority, and the books balance.

The orders are published as capture announces them (OrderValidated), so that their arrival can be set: the
express one ten minutes before Amsterdam's 16:00 cut-off on the latest business day that has passed, the
standard ones two and one hours earlier (so first come first served alone would serve them first)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from deploy.local.keys import DevelopmentKeys
from services.allocation.settings import DEFAULT_CARRIERS_FILE
from shared.backbone.kafka import encode
from shared.contracts import topics
from shared.contracts.envelope import wrap
from shared.reference.promises import cutoff_at, is_business_day
from shared.reference.rates import ShippingRules
from shared.reference.warehouses import load_warehouses
from tests.factories import validated_order
from tests.integration.allocation_steps import allocation_order, assert_books_balance, shipments
from tests.local import LOCAL, client
from tests.scenario import TopicReader, new_skus, seed
from tests.waiting import eventually

CALENDAR = ShippingRules.model_validate_json(DEFAULT_CARRIERS_FILE.read_bytes()).calendar
AMS_CUTOFF = next(w for w in load_warehouses() if w.id == "ams").cutoff


def just_before_the_latest_cutoff(now: datetime) -> datetime:
    """Ten minutes before Amsterdam's cut-off on the latest business day on which that moment has passed."""
    day = now.astimezone(CALENDAR.zone).date()
    while not is_business_day(day, CALENDAR) or cutoff_at(day, AMS_CUTOFF, CALENDAR) - timedelta(minutes=10) > now:
        day -= timedelta(days=1)
    return cutoff_at(day, AMS_CUTOFF, CALENDAR) - timedelta(minutes=10)


async def place(sku: str, service_level: str, arrived_at: datetime) -> str:
    """An order for one unit to Amsterdam, as capture announces it once validated."""
    order_id = uuid.uuid4()
    validated = validated_order(order_id, sku).model_copy(
        update={"service_level": service_level, "received_at": arrived_at}
    )
    envelope = wrap(validated, producer="capture", order_id=order_id)
    await client.publish(topics.ORDERS_VALIDATED.name, [(str(order_id), encode(envelope))])
    return str(order_id)


async def pick_task(reader: TopicReader, order_id: str) -> dict[str, Any]:
    [released] = await eventually(lambda: reader.bodies_for(order_id), bool)
    payload: dict[str, Any] = released["payload"]
    return payload


async def shipped_or_waiting(db: asyncpg.Pool, order_id: str) -> None:
    """Every reservation of the order has shipped (none for an order still waiting for stock)."""
    await eventually(lambda: shipments(db, order_id), lambda rows: all(r[4] == "shipped" for r in rows), timeout=60)


async def test_an_express_order_placed_just_before_the_cutoff_overtakes_standard_orders_waiting_for_stock(
    db, pipeline
) -> None:
    # given a SKU out of stock, and two standard orders waiting for it, then an express one placed ten minutes
    # before the cut-off
    (sku,) = new_skus(1)
    await seed([("ams", sku, 0)])
    express_at = just_before_the_latest_cutoff(datetime.now(UTC))
    first = await place(sku, "standard", express_at - timedelta(hours=2))
    second = await place(sku, "standard", express_at - timedelta(hours=1))
    express = await place(sku, "express", express_at)
    for order_id in (first, second, express):
        await allocation_order(db, order_id, {"backordered"})

    # and allocation explains the express order's priority to operators: its level, the cut-off it raced, the
    # promise, the age earned while waiting
    async with httpx.AsyncClient(timeout=30, auth=DevelopmentKeys(LOCAL.keys_file)) as operator:
        response = await operator.get(f"{LOCAL.http_url('allocation')}/v1/orders/{express}/priority")
        assert response.status_code == 200, response.text
        explained = response.json()
        standard = (await operator.get(f"{LOCAL.http_url('allocation')}/v1/orders/{first}/priority")).json()
    components = {c["name"]: c for c in explained["components"]}
    assert components["service_level"]["points"] == 300
    assert components["cutoff"]["detail"] == "10 min before the 16:00 cut-off at ams"
    assert components["cutoff"]["points"] > 0
    assert explained["band"] > standard["band"], (explained, standard)

    async with TopicReader(topics.PICK_TASKS.name) as pick_tasks:
        # when two units arrive
        await client.publish_receipts([("ams", sku, 2)], reference=f"receipt-{uuid.uuid4()}")

        # then the express order gets one ahead of both standard orders, and the earlier standard order the other
        released = await allocation_order(db, express, {"allocated"})
        assert "; priority " in released["reason"] and "express 300" in released["reason"], released["reason"]
        await allocation_order(db, first, {"allocated"})
        assert (await allocation_order(db, second, {"backordered"}))["backordered"] == {sku: 1}

        # and each pick task carries its order's priority: the express one's is the higher
        express_task, first_task = [await pick_task(pick_tasks, order_id) for order_id in (express, first)]
    assert express_task["priority"] > first_task["priority"] >= 0, (express_task, first_task)
    stored = await db.fetchval(
        "SELECT priority FROM fulfillment.pick_tasks WHERE pick_task_id = $1", uuid.UUID(express_task["pick_task_id"])
    )
    assert stored == express_task["priority"]

    # and both ship, while the books balance
    for order_id in (express, first):
        await shipped_or_waiting(db, order_id)
    await assert_books_balance(db, [sku])

    # when one more unit arrives, the standard order still waiting gets it: nothing is left behind
    await client.publish_receipts([("ams", sku, 1)], reference=f"receipt-{uuid.uuid4()}")
    await allocation_order(db, second, {"allocated"})
    await shipped_or_waiting(db, second)
    await assert_books_balance(db, [sku])
