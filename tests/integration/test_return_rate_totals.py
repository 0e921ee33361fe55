"""The return rate by channel comes from running totals, on the real database: each shipment is counted once, when
its order is known (an order and its shipments arrive on different topics, in either order), each unit received
back on its RMA once, and the totals say what summing every shipment and receipt stored would say."""

import uuid
from datetime import UTC, datetime

from services.returns import repository
from services.returns.answers import ReturnRates
from services.returns.settings import ReturnsSettings
from shared.backbone.db import connect
from shared.contracts import events as ev
from tests.factories import validated_order

# What the gauge read before the totals, every 30 s: every shipment and return line ever stored, for one channel.
SUMMED = """
SELECT sum(s.quantity)::int AS shipped, coalesce(sum(r.returned), 0)::int AS returned
FROM (SELECT order_id, sku, sum(quantity) AS quantity FROM shipped_units GROUP BY order_id, sku) s
JOIN orders o USING (order_id)
LEFT JOIN (SELECT t.order_id, l.sku, sum(l.received) AS returned FROM returns t
           JOIN return_lines l USING (return_id) GROUP BY t.order_id, l.sku) r USING (order_id, sku)
WHERE o.channel = $1
"""


def order_of(channel: str, sku: str) -> ev.OrderValidated:
    return validated_order(uuid.uuid4(), sku, quantity=3).model_copy(
        update={"channel": channel, "external_id": f"ext-{uuid.uuid4()}"}
    )


def shipped(order: ev.OrderValidated, units: int) -> ev.OrderShipped:
    return ev.OrderShipped(
        order_id=order.order_id,
        pick_task_id=uuid.uuid4(),
        warehouse_id="ams",
        carrier="postnl",
        tracking_number=f"TN{uuid.uuid4().hex[:10]}",
        shipped_at=datetime.now(UTC),
        lines=[ev.ItemQuantity(sku=order.lines[0].sku, quantity=units)],
    )


async def rate_of(conn, channel: str) -> tuple[int, int] | None:
    rates = await repository.return_rates(conn, "channel", limit=100_000)
    ReturnRates.model_validate({"by": "channel", "rates": rates})  # as the API's document declares them
    return next(((r["shipped"], r["returned"]) for r in rates if r["channel"] == channel), None)


async def test_shipments_count_once_when_their_order_is_known_and_received_units_once(stack) -> None:
    channel = f"rate-{uuid.uuid4().hex[:8]}"  # a channel of its own: the stack's other orders do not touch it
    conn = await connect(ReturnsSettings())  # as returns connects: its role, its schema
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # given an order and two of its shipments, one of them delivered twice
            first = order_of(channel, "RATE-A")
            await repository.save_orders(conn, [first])
            one, two = shipped(first, 1), shipped(first, 2)
            await repository.save_shipments(conn, [one, two])
            await repository.save_shipments(conn, [one])
            # and a shipment of an order not known yet (its OrderValidated is read later)
            late = order_of(channel, "RATE-B")
            await repository.save_shipments(conn, [shipped(late, 3)])

            # then the channel counts the known order's units once, and not yet the other's
            assert await rate_of(conn, channel) == (3, 0)
            # and once the late order is known, its shipment is counted too, once however often the rate is read
            await repository.save_orders(conn, [late])
            assert await rate_of(conn, channel) == (6, 0)
            assert await rate_of(conn, channel) == (6, 0)

            # when a unit of the first order comes back on its RMA
            return_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO returns (return_id, order_id, source, status, resolution, requested_at, rma)"
                " VALUES ($1, $2, 'api', 'authorised', 'refund', now(), $3)",
                return_id,
                first.order_id,
                f"RMA-{return_id.hex[:8].upper()}",
            )
            await conn.execute(
                "INSERT INTO return_lines (return_id, sku, quantity, reason) VALUES ($1, 'RATE-A', 1, 'size')",
                return_id,
            )
            line = ev.ReceivedLine(sku="RATE-A", quantity=1, disposition="restock")
            report = ev.WarehouseReturnReceived(
                kind="return_received",
                warehouse_id="ams",
                rma="RMA-X",
                receipt=f"rcpt-{return_id.hex[:8]}",
                lines=[line],
                occurred_at=datetime.now(UTC),
            )
            await repository.record_receipt(conn, return_id, report, [line], [])

            # then it counts as returned, and the totals say what summing every row stored says
            assert await rate_of(conn, channel) == (6, 1)
            summed = await conn.fetchrow(SUMMED, channel)
            assert summed is not None and (summed["shipped"], summed["returned"]) == (6, 1)
        finally:
            await transaction.rollback()  # leaves nothing behind
    finally:
        await conn.close()
