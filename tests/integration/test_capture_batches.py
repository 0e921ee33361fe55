"""Capture's intake of a batch of orders read together, against the real PostgreSQL schema in one transaction
that is rolled back: the events it would publish are read back from its outbox."""

import json
import uuid
from typing import Any

from services.capture.handlers import CaptureHandlers
from services.capture.settings import CaptureSettings
from shared.backbone.db import connect
from shared.backbone.kafka import Inbound, Origin
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import wrap
from tests.factories import order_document
from tests.scenario import new_skus, seed


def records(topic: topics.Topic, payloads: list[ev.Contract]) -> list[Inbound[Any]]:
    """As the consumer reads them: one record each, with an event id of its own."""
    return [
        Inbound(Origin(topic.name, 0, n, None, None, ()), wrap(p, producer=topic.writer), p)
        for n, p in enumerate(payloads)
    ]


async def test_orders_read_together_are_each_taken_in_once_and_a_held_cancel_request_is_applied_to_its_order(
    pipeline,
) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    settings = CaptureSettings()
    handlers = CaptureHandlers(settings.intake_rules, settings.risk_rules(), settings.early_cancel_window)
    first, second = order_document([(sku, 1)]), order_document([(sku, 2)])
    conn = await connect(settings)
    transaction = conn.transaction()
    await transaction.start()
    try:
        outbox_from = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        # given a channel's cancel request for the second order, held: that order has not arrived
        request = ev.CancelRequested(channel=second["channel"], external_id=second["external_id"], reason="twice")
        held = records(topics.CANCEL_REQUESTS, [request])
        await handlers.prepare(conn, held)
        await handlers.routes()[ev.CancelRequested](conn, held)

        # when one batch brings the first order, the second, and the first again (sent twice by its channel)
        orders = [ev.SubmittedOrder.model_validate(d) for d in (first, second, first)]
        batch = records(topics.ORDERS_SUBMITTED, orders)  # type: ignore[arg-type]
        await handlers.prepare(conn, batch)
        await handlers.routes()[ev.SubmittedOrder](conn, batch)

        # then each order is taken in once, its decision announced once, in the order read, and the held
        # request is passed on for the second order right after its own decision
        rows = await conn.fetch("SELECT body FROM outbox WHERE id > $1 ORDER BY id", outbox_from)
        published = [(body["type"], body["payload"]) for body in (json.loads(r["body"]) for r in rows)]
        assert [(kind, p.get("external_id")) for kind, p in published] == [
            ("OrderValidated", first["external_id"]),
            ("OrderValidated", second["external_id"]),
            ("OrderCancellationRequested", None),
        ]
        ids = {p["external_id"]: p["order_id"] for kind, p in published if kind == "OrderValidated"}
        assert published[2][1]["order_id"] == ids[second["external_id"]]
        for document in (first, second):
            order_id = uuid.UUID(ids[document["external_id"]])
            steps = await conn.fetch("SELECT status FROM order_timeline WHERE order_id = $1 ORDER BY id", order_id)
            expected = ["received", "validated"] + (["cancellation_requested"] if document is second else [])
            assert [s["status"] for s in steps] == expected
        applied = await conn.fetchrow(
            "SELECT state, order_id FROM early_cancel_requests WHERE channel = $1 AND external_id = $2",
            second["channel"],
            second["external_id"],
        )
        assert applied is not None
        assert (applied["state"], str(applied["order_id"])) == ("applied", ids[second["external_id"]])
    finally:
        await transaction.rollback()
        await conn.close()
