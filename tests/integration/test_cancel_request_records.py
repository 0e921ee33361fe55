"""Capture's record of cancel requests, on the real database: fulfillment's answer resolves the request it
was caused by, and an answer that names no cause resolves the oldest open one."""

import uuid

from services.capture import repository
from services.capture.settings import CaptureSettings
from shared.backbone.db import connect
from shared.contracts.envelope import now
from shared.contracts.events import ItemQuantity, SubmittedOrder
from tests.factories import order_document


async def test_an_answer_resolves_the_request_that_caused_it_else_the_oldest_open_one(stack) -> None:
    conn = await connect(CaptureSettings())  # as capture connects: its role, its schema
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            order = SubmittedOrder.model_validate(order_document([("A", 2), ("B", 1)]))
            order_id = await repository.insert_order(conn, order, order.payment.amount, "validated", [], now())
            assert order_id is not None
            events = {name: uuid.uuid4() for name in ("first", "second", "third")}
            for name, lines in (("first", None), ("second", [("A", 1)]), ("third", [("B", 1)])):
                items = None if lines is None else [ItemQuantity(sku=s, quantity=n) for s, n in lines]
                await repository.add_cancel_request(conn, order_id, name, events[name], items, "r", "api", now())

            await repository.resolve_request(conn, order_id, events["second"], "refused", "pick task packed")
            await repository.resolve_request(conn, order_id, None, "accepted", "withdrawn")

            states = await conn.fetch(
                "SELECT fingerprint, state, outcome FROM cancel_requests WHERE order_id = $1 ORDER BY requested_at",
                order_id,
            )
            assert [tuple(s) for s in states] == [
                ("first", "accepted", "withdrawn"),
                ("second", "refused", "pick task packed"),
                ("third", "requested", None),
            ]
        finally:
            await transaction.rollback()  # leaves nothing behind
    finally:
        await conn.close()
