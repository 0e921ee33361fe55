"""Two instances of fulfillment, each reading other partitions of the carrier events: the deliveries of an order's
last two shipments handled at the same moment must still end with the order delivered. Found by the chaos run
(an order left `shipped` for good, both parcels delivered): each instance saw the other's parcel still on its way.

Played deliberately, as the race tests do: two connections run the handlers as the consumer does (prepare, then
handle), and the test holds one transaction open while the other runs."""

import asyncio
import uuid
from datetime import UTC, datetime

from services.fulfillment.handlers import FulfillmentHandlers
from services.fulfillment.settings import FulfillmentSettings
from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.integration.test_cancellation_races import blocked_until, handle, instances  # noqa: F401 - fixture
from tests.scenario import new_skus


async def test_the_last_two_shipments_delivered_at_once_on_two_instances_deliver_the_order(instances, db) -> None:  # noqa: F811
    settings = FulfillmentSettings()
    handlers = FulfillmentHandlers(settings.shipping_rules(), settings.warehouses(), settings.clock())
    setup, _ = await instances(settings)
    first, second = await instances(settings)
    order_id = uuid.uuid4()
    sku_a, sku_f = new_skus(2)
    shipments = [
        ev.Shipment(shipment_id=uuid.uuid4(), warehouse_id=w, lines=[ev.ItemQuantity(sku=s, quantity=1)])
        for w, s in (("ams", sku_a), ("fra", sku_f))
    ]
    # given an order split over two warehouses whose two parcels are with the carrier
    allocated = ev.OrderAllocated(
        order_id=order_id,
        shipments=shipments,
        ship_to=ev.Address.model_validate(order_document()["shipping_address"]),
        service_level="standard",
    )
    await handle(handlers, setup.conn, topics.ALLOCATION_EVENTS, allocated)
    for shipment in shipments:
        packed = ev.WarehouseReported(
            pick_task_id=shipment.shipment_id,
            warehouse_id=shipment.warehouse_id,
            kind="packed",
            package=ev.Package(weight_grams=450),
            occurred_at=datetime.now(UTC),
        )
        await handle(handlers, setup.conn, topics.WAREHOUSE_EVENTS, packed)
    parcels = await setup.conn.fetch(
        "SELECT tracking_number, carrier FROM shipments WHERE order_id = $1 ORDER BY tracking_number", order_id
    )
    await setup.commit(publish=False)  # the order exists nowhere else: its events stay out of the pipeline

    def delivered(parcel: dict[str, str]) -> ev.CarrierReported:
        return ev.CarrierReported(
            tracking_number=parcel["tracking_number"],
            carrier=parcel["carrier"],
            kind="delivered",
            occurred_at=datetime.now(UTC),
        )

    # when one instance records the delivery of the first parcel, not committed yet
    await handle(handlers, first.conn, topics.CARRIER_EVENTS, delivered(parcels[0]))
    # and the other instance reads the delivery of the second parcel at that moment
    late = asyncio.create_task(handle(handlers, second.conn, topics.CARRIER_EVENTS, delivered(parcels[1])))

    # then it waits for the first instance's decision about the order
    await blocked_until(db, second.conn, late)
    told_first = [kind for kind, _ in await first.published()]
    await first.commit(publish=False)
    await late
    told_second = [kind for kind, _ in await second.published()]
    await second.commit(publish=False)
    # and the order is delivered, once: by the instance that saw both parcels delivered
    assert (told_first, told_second) == ([], ["OrderDelivered"])
