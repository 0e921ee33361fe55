"""Capture's risk assessment at intake, against the real PostgreSQL schema in one transaction that is rolled back:
velocity counts come from the orders taken in before (one statement per batch) and from the batch's own earlier
orders; every order that passes validation has its assessment stored; those not accepted go on hold, announced as
held (for nobody to allocate), not as validated."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.capture.handlers import CaptureHandlers
from services.capture.settings import CaptureSettings
from shared.backbone.db import connect
from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.integration.test_capture_batches import records
from tests.scenario import new_skus, seed


@pytest.fixture
async def rolled_back(pipeline: Any) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(CaptureSettings())
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


async def take_in(conn: asyncpg.Connection, handlers: CaptureHandlers, documents: list[dict[str, Any]]) -> list[str]:
    batch = records(topics.ORDERS_SUBMITTED, [ev.SubmittedOrder.model_validate(d) for d in documents])
    await handlers.prepare(conn, batch)
    await handlers.routes()[ev.SubmittedOrder](conn, batch)
    return [
        str(await conn.fetchval("SELECT order_id FROM orders WHERE external_id = $1", d["external_id"]))
        for d in documents
    ]


async def assessments(conn: asyncpg.Connection, order_ids: list[str]) -> list[tuple[str, list[str], Any]]:
    found = []
    for order_id in order_ids:
        row = await conn.fetchrow(
            "SELECT recommendation, rules FROM risk_assessments WHERE order_id = $1", uuid.UUID(order_id)
        )
        assert row is not None, order_id
        velocity = [r["facts"]["orders"] for r in row["rules"] if r["rule"] == "velocity.email"]
        found.append((row["recommendation"], [r["rule"] for r in row["rules"]], velocity[0] if velocity else None))
    return found


async def test_a_burst_from_one_email_is_counted_within_the_batch_and_from_the_orders_before_it(rolled_back) -> None:
    conn = rolled_back
    (sku,) = new_skus(1, prefix="RISK")
    await seed([("ams", sku, 50)])
    settings = CaptureSettings()
    handlers = CaptureHandlers(settings.intake_rules, settings.risk_rules(), settings.early_cancel_window)
    email = f"burst-{uuid.uuid4().hex[:8]}@example.test"

    def from_the_burst() -> dict[str, Any]:
        document = order_document([(sku, 1)])
        document["customer"]["email"] = email
        return document

    # given four orders from one e-mail taken in (the reference rules allow five a day), and one rejected
    # (an unknown SKU: an attempt counts too)
    earlier = await take_in(conn, handlers, [from_the_burst() for _ in range(3)])
    rejected = {**from_the_burst(), "lines": [{"sku": f"UNKNOWN-{sku}", "quantity": 1, "unit_price": "1.00"}]}
    await take_in(conn, handlers, [rejected])
    assert [a[0] for a in await assessments(conn, earlier)] == ["accept"] * 3

    # when one batch brings three more from that e-mail, the first of them twice (sent twice by its channel)
    outbox_from = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
    burst = [from_the_burst() for _ in range(3)]
    order_ids = await take_in(conn, handlers, [burst[0], burst[1], burst[0], burst[2]])

    # then the fifth order passes, the sixth and seventh are over the limit, counted once each
    assert await assessments(conn, [order_ids[0], order_ids[1], order_ids[3]]) == [
        ("accept", [], None),
        ("investigate", ["velocity.email"], 6),
        ("investigate", ["velocity.email"], 7),
    ]
    # and every order taken in is counted by its e-mail and address, the rejected one with no assessment
    counted = await conn.fetchval(
        "SELECT count(*) FROM order_risk_keys k JOIN orders o USING (order_id)"
        " WHERE o.external_id = ANY($1::text[]) AND k.dimension IN ('email', 'address')",
        [d["external_id"] for d in [*burst, rejected]],
    )
    assert counted == 8
    rejected_id = await conn.fetchval("SELECT order_id FROM orders WHERE external_id = $1", rejected["external_id"])
    assert await conn.fetchval("SELECT count(*) FROM risk_assessments WHERE order_id = $1", rejected_id) == 0

    # and the fifth is announced as validated, the sixth and seventh as held, on a fraud hold each
    rows = await conn.fetch("SELECT topic, body FROM outbox WHERE id > $1 ORDER BY id", outbox_from)
    announced = [(r["topic"], json.loads(r["body"])["type"], json.loads(r["body"])["order_id"]) for r in rows]
    assert announced == [
        (topics.ORDERS_VALIDATED.name, "OrderValidated", order_ids[0]),
        (topics.ORDER_HOLDS.name, "OrderHeld", order_ids[1]),
        (topics.ORDER_HOLDS.name, "OrderHeld", order_ids[3]),
    ]
    for order_id in (order_ids[1], order_ids[3]):
        assert await conn.fetchval("SELECT status FROM orders WHERE order_id = $1", uuid.UUID(order_id)) == "on_hold"
        holds = await conn.fetch(
            "SELECT hold_type, state, placed_by FROM holds WHERE order_id = $1", uuid.UUID(order_id)
        )
        assert [tuple(h) for h in holds] == [("fraud", "held", "risk assessment")]
