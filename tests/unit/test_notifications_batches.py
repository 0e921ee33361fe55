"""Notifications takes a batch of lifecycle events at once: each order's backordered units carried from one of its
events to the next in the order read, and the whole batch written with one statement per table, however many
events and orders it holds."""

import uuid
from datetime import UTC, datetime
from typing import Any

from services.notifications import domain
from services.notifications.handlers import NotificationHandlers
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts.envelope import wrap

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
ADDRESS = ev.Address(name="Ada", line1="Dam 1", city="Amsterdam", postal_code="1012", country="NL")


def items(**units: int) -> list[ev.ItemQuantity]:
    return [ev.ItemQuantity(sku=sku, quantity=n) for sku, n in units.items()]


def validated(order_id: uuid.UUID) -> ev.OrderValidated:
    return ev.OrderValidated(
        order_id=order_id, channel="webshop", external_id=f"W-{order_id.hex[:6]}", received_at=NOW, currency="EUR",
        total="24.95", customer=ev.Customer(email="ada@example.com", name="Ada"), ship_to=ADDRESS,
        service_level="standard", lines=items(A=2, B=1),
    )  # fmt: skip


def allocated(order_id: uuid.UUID, **waiting: int) -> ev.OrderAllocated:
    return ev.OrderAllocated(
        order_id=order_id, shipments=[], ship_to=ADDRESS, service_level="standard", backordered=items(**waiting)
    )


def shipped(order_id: uuid.UUID) -> ev.OrderShipped:
    return ev.OrderShipped(
        order_id=order_id, pick_task_id=uuid.uuid4(), warehouse_id="ams", carrier="parcelnet", tracking_number="PN1",
        shipped_at=NOW, lines=items(A=2), order_complete=True,
    )  # fmt: skip


def test_each_orders_backordered_units_go_from_one_of_its_events_to_the_next() -> None:
    # given one order that waited for B before the batch, and one that waits for nothing
    first, second = uuid.uuid4(), uuid.uuid4()
    before = {first: {"B": 1}}
    # when the first order's B is cancelled and it ships, while the second is allocated with A waiting and ships
    batch = [
        ev.OrderCancelled(order_id=first, reason="customer", lines=items(B=1)),
        allocated(second, A=1),
        shipped(first),
        shipped(second),
    ]
    changed, intents = domain.messages_for(batch, before)
    # then the first order's shipment completes it, the second's is partial, with what waits after each
    assert changed == {first: {}, second: {"A": 1}}
    assert [(i.order_id, i.kind) for i in intents] == [
        (first, "cancelled"),
        (second, "backordered"),
        (first, "shipped"),
        (second, "partially_shipped"),
    ]
    assert before == {first: {"B": 1}}  # what the caller gave is left as it was


class CountingConnection:
    """Records each statement sent; reads find nothing waiting for stock."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append(self._named(sql))
        return ""

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append(self._named(sql))
        return []

    @staticmethod
    def _named(sql: str) -> str:
        verb, *words = sql.split(maxsplit=3)
        if verb == "INSERT":
            return f"INSERT {words[1]}"
        return f"{verb} {sql.partition(' FROM ')[2].split(maxsplit=1)[0] if verb == 'SELECT' else words[0]}"


def shipped_after_waiting(orders: list[uuid.UUID]) -> list[Inbound[ev.Contract]]:
    """Each order validated, allocated with one B waiting, and shipped."""
    return [inbound(event) for o in orders for event in (validated(o), allocated(o, B=1), shipped(o))]


def inbound(payload: ev.Contract) -> Inbound[ev.Contract]:
    envelope = wrap(payload, producer="test", order_id=getattr(payload, "order_id", None))
    return Inbound(Origin("oms.test", 0, 0, None, None, ()), envelope, payload)


async def test_a_batch_of_many_orders_is_written_with_one_statement_per_table_and_nothing_rendered() -> None:
    # given a batch of 30 orders, each validated, allocated with something waiting and shipped
    orders = [uuid.uuid4() for _ in range(30)]
    batch = shipped_after_waiting(orders)
    conn = CountingConnection()
    # when notifications handles it
    await NotificationHandlers().on_lifecycle_event(conn, batch)  # type: ignore[arg-type]
    # then each table is read or written once for the whole batch, and the messages are recorded without reading
    # whom they are for or creating deliveries: they are rendered later, outside this transaction
    assert conn.statements == ["INSERT contacts", "SELECT backorders", "INSERT backorders", "INSERT messages"]
