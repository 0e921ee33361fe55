"""Customer messages on the real stack: what the shipped mail says, one message per (order, kind, shipment)
whatever is redelivered, and webhook deliveries that are signed, retried with backoff and recorded."""

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn

from services.notifications import repository
from services.notifications.planning import Planned
from services.notifications.settings import DEVELOPMENT_WEBHOOK_SECRET
from shared.contracts import events as ev
from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL, client
from tests.scenario import (
    TopicReader,
    channel_key,
    free_port,
    mail_for,
    mails,
    new_skus,
    parts,
    publish_event,
    restart,
    seed,
    wait_status,
)
from tests.waiting import eventually


async def delivered_order(http) -> tuple[str, Any]:
    """An order run to delivered, and the record of its OrderShipped event."""
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    async with TopicReader(topics.FULFILLMENT_EVENTS.name) as fulfillment:
        order_id = (await http.post("/v1/orders", json=order_document([(sku, 2)]))).json()["order_id"]
        await wait_status(http, order_id, {"delivered"})
        records = await eventually(
            fulfillment.read,
            lambda seen: any(b"OrderShipped" in r.value and order_id.encode() in r.value for r in seen),
        )
    return order_id, next(r for r in records if b"OrderShipped" in r.value and order_id.encode() in r.value)


async def test_the_shipped_mail_has_the_tracking_link_and_the_promised_delivery_date(http) -> None:
    order_id, record = await delivered_order(http)
    shipped = json.loads(record.value)["payload"]
    # when fulfillment reports a shipment with a tracking link and a promised delivery date
    shipment = ev.OrderShipped.model_validate(
        {
            **shipped,
            "pick_task_id": str(uuid.uuid4()),
            "tracking_url": f"https://track.example/parcel?number={shipped['tracking_number']}&lang=en",
            "promised_delivery": "2026-03-12",
        }
    )
    await publish_event(topics.FULFILLMENT_EVENTS, shipment, uuid.UUID(order_id))

    # then the customer's mail about that shipment has both, in the text and in the HTML part
    (mail,) = await eventually(
        lambda: [m for m in mails(order_id, "shipped") if m["X-OMS-Shipment-Key"] == str(shipment.pick_task_id)],
        bool,
    )
    text, html = parts(mail)["text/plain"], parts(mail)["text/html"]
    assert shipment.tracking_url is not None and shipment.tracking_url in text
    assert f'<a href="{shipment.tracking_url.replace("&", "&amp;")}">' in html
    assert "Expected delivery: Thursday 12 March 2026" in text
    assert "Thursday 12 March 2026" in html
    assert shipment.tracking_number in text and shipment.carrier in text
    assert mail["Subject"].startswith("Your order ") and mail["Subject"].endswith(" is on its way")


async def test_redelivered_and_republished_events_do_not_send_a_message_twice(http, db) -> None:
    order_id, record = await delivered_order(http)
    await eventually(lambda: mails(order_id, "shipped"), lambda found: len(found) == 1)

    # when the OrderShipped record is delivered again (same event id), and published again under a new event id
    await client.publish(topics.FULFILLMENT_EVENTS.name, [(order_id, record.value)])
    repeated = ev.OrderShipped.model_validate(json.loads(record.value)["payload"])
    await publish_event(topics.FULFILLMENT_EVENTS, repeated, uuid.UUID(order_id))
    await client.wait_caught_up("oms-notifications", [topics.FULFILLMENT_EVENTS.name])
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM notifications.messages m LEFT JOIN notifications.deliveries d"
            " USING (order_id, kind, shipment_key)"
            " WHERE order_id = $1 AND (m.planned_at IS NULL OR d.status = 'pending')",
            uuid.UUID(order_id),
        ),
        lambda pending: pending == 0,
    )

    # then there is still one message per kind, each delivered by one attempt, and one mail of each kind
    rows = await db.fetch(
        "SELECT m.kind, count(a.id) AS attempts FROM notifications.messages m JOIN notifications.delivery_attempts a"
        " USING (order_id, kind, shipment_key) WHERE m.order_id = $1 GROUP BY m.kind ORDER BY m.kind",
        uuid.UUID(order_id),
    )
    assert [(r["kind"], r["attempts"]) for r in rows] == [("confirmed", 1), ("delivered", 1), ("shipped", 1)]
    assert mail_for(order_id) == ["confirmed", "delivered", "shipped"]


async def test_a_message_about_an_order_whose_customer_is_not_known_yet_waits_and_is_sent_once_known(db) -> None:
    # given a shipment of an order whose validation notifications has not read yet (the two travel on different
    # topics, so after an outage one topic's backlog can be read before the other's)
    order_id, (sku,) = uuid.uuid4(), new_skus(1)
    shipment = ev.OrderShipped(
        order_id=order_id, pick_task_id=uuid.uuid4(), warehouse_id="ams", carrier="parcelnet",
        tracking_number=f"PN{order_id.hex[:10]}", shipped_at=datetime.now(UTC),
        lines=[ev.ItemQuantity(sku=sku, quantity=1)], order_complete=True,
    )  # fmt: skip
    await publish_event(topics.FULFILLMENT_EVENTS, shipment, order_id)
    await client.wait_caught_up("oms-notifications", [topics.FULFILLMENT_EVENTS.name])

    # then its message is kept, not rendered, and nothing is sent
    waiting = await db.fetch("SELECT kind, planned_at FROM notifications.messages WHERE order_id = $1", order_id)
    assert [(r["kind"], r["planned_at"]) for r in waiting] == [("shipped", None)]
    assert mails(str(order_id)) == []

    # when the order's validation arrives, naming the customer
    validated = ev.OrderValidated(
        order_id=order_id, channel="webshop", external_id=f"W-{order_id.hex[:8]}", received_at=datetime.now(UTC),
        currency="EUR", total="9.95", customer=ev.Customer(email=f"ada-{order_id.hex[:8]}@example.com", name="Ada"),
        ship_to=ev.Address(name="Ada", line1="Dam 1", city="Amsterdam", postal_code="1012", country="NL"),
        service_level="standard", lines=[ev.ItemQuantity(sku=sku, quantity=1)],
    )  # fmt: skip
    await publish_event(topics.ORDERS_VALIDATED, validated, order_id)

    # then the waiting message is rendered and sent, once, beside the confirmation
    (mail,) = await eventually(lambda: mails(str(order_id), "shipped"), bool)
    assert shipment.tracking_number in parts(mail)["text/plain"]
    await eventually(lambda: mails(str(order_id), "confirmed"), lambda found: len(found) == 1)
    await client.wait_caught_up("oms-notifications", [topics.ORDERS_VALIDATED.name])
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM notifications.deliveries WHERE order_id = $1 AND status = 'pending'", order_id
        ),
        lambda pending: pending == 0,
    )
    assert len(mails(str(order_id), "shipped")) == 1


class WebhookReceiver:
    """A webhook endpoint on loopback (an ASGI app under uvicorn) that records every request and answers
    500 to the first ones, like a receiver having a bad moment."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(self, lifespan="off", log_level="warning"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/hooks/oms"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, body))
        status = 500 if len(self.requests) <= self.failures else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def __aenter__(self) -> "WebhookReceiver":
        self.task = asyncio.create_task(self.server.serve(sockets=[self.socket]))
        await eventually(lambda: self.server.started, bool)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.should_exit = True
        await self.task


async def attempts(db, order_id: str, channel: str) -> list[Any]:
    return await db.fetch(  # type: ignore[no-any-return]
        "SELECT attempt, attempted_at, succeeded, detail FROM notifications.delivery_attempts"
        " WHERE order_id = $1 AND channel = $2 ORDER BY attempt",
        uuid.UUID(order_id),
        channel,
    )


async def test_webhooks_are_signed_retried_with_backoff_and_every_attempt_recorded(http, db, pipeline) -> None:
    sales_channel = f"hooks-{uuid.uuid4().hex[:8]}"
    notifications = pipeline["notifications"]
    async with WebhookReceiver(failures=1) as receiver:
        # given notifications configured with two webhooks for this sales channel, one of them unreachable
        webhooks = [
            {"name": "crm", "url": receiver.url, "sales_channels": [sales_channel]},
            {"name": "down", "url": f"http://127.0.0.1:{free_port()}/hooks", "sales_channels": [sales_channel]},
        ]
        env = {
            "OMS_WEBHOOKS": json.dumps(webhooks),
            "OMS_RETRY_BASE_SECONDS": "0.5",
            "OMS_MAX_ATTEMPTS": "3",
            "OMS_OUTBOX_POLL_SECONDS": "0.2",
        }
        await restart(notifications, env)
        try:
            # when an order of that channel is refused (an unknown SKU), so the customer is to be told
            document = order_document([(f"UNKNOWN-{uuid.uuid4().hex[:8]}", 1)], channel=sales_channel)
            key = await channel_key(db, sales_channel)
            order_id = (await http.post("/v1/orders", json=document, auth=key)).json()["order_id"]

            # then the endpoint receives the notification twice: it failed the first, the retry came after backoff
            await eventually(lambda: receiver.requests, lambda seen: len(seen) >= 2, timeout=30)
            (first, first_body), (second, second_body) = receiver.requests
            assert first_body == second_body
            expected = "sha256=" + hmac.new(DEVELOPMENT_WEBHOOK_SECRET.encode(), first_body, hashlib.sha256).hexdigest()
            assert first["x-oms-signature"] == second["x-oms-signature"] == expected
            assert (first["x-oms-delivery-attempt"], second["x-oms-delivery-attempt"]) == ("1", "2")
            assert first["x-oms-message-id"] == second["x-oms-message-id"]
            notification = json.loads(first_body)
            assert (notification["kind"], notification["order_id"]) == ("rejected", order_id)
            assert (notification["sales_channel"], notification["reference"]) == (
                sales_channel,
                document["external_id"],
            )
            assert "unknown SKU" in notification["text"] and document["customer"]["email"] not in first_body.decode()

            # and every attempt is recorded, per channel: the unreachable one backed off 0.5 s, 1 s, then gave up
            crm = await eventually(lambda: attempts(db, order_id, "webhook:crm"), lambda rows: len(rows) == 2)
            assert [(a["attempt"], a["succeeded"], a["detail"]) for a in crm] == [
                (1, False, "HTTP 500"),
                (2, True, None),
            ]
            down = await eventually(lambda: attempts(db, order_id, "webhook:down"), lambda rows: len(rows) == 3)
            assert [(a["succeeded"], a["detail"]) for a in down] == [(False, "ConnectError")] * 3
            gaps = [(b["attempted_at"] - a["attempted_at"]).total_seconds() for a, b in itertools.pairwise(down)]
            assert gaps[0] >= 0.5 and gaps[1] >= 1.0
            states = await db.fetch(
                "SELECT channel, status, attempts FROM notifications.deliveries WHERE order_id = $1 ORDER BY channel",
                uuid.UUID(order_id),
            )
            assert [tuple(s) for s in states] == [
                ("email", "sent", 1),
                ("webhook:crm", "sent", 2),
                ("webhook:down", "failed", 3),
            ]
            assert mail_for(order_id) == ["rejected"]
        finally:
            await restart(notifications, {})
    # and orders of other sales channels never reached this endpoint
    assert {json.loads(body)["order_id"] for _, body in receiver.requests} == {order_id}


async def test_renderings_are_kept_once_by_whichever_instance_claims_them_first(db) -> None:
    # given two messages recorded for orders whose customers are not known yet, so no planning renders them
    orders = [uuid.uuid4(), uuid.uuid4()]
    await db.executemany(
        "INSERT INTO notifications.messages (order_id, kind, facts) VALUES ($1, 'confirmed', '{}')",
        [(o,) for o in orders],
    )
    planned = [
        Planned((o, "confirmed", ""), {}, "Confirmed", "text", "<p>html</p>", [("email", None), ("crm", b"{}")])
        for o in orders
    ]
    one = await asyncpg.connect(LOCAL.pg_dsn("notifications"), password=LOCAL.db_password("notifications"))
    other = await asyncpg.connect(LOCAL.pg_dsn("notifications"), password=LOCAL.db_password("notifications"))
    try:
        async with one.transaction():
            # whose contacts one instance sees (saved in its own transaction, not committed yet)
            await one.executemany(
                "INSERT INTO contacts (order_id, email, name, reference, sales_channel)"
                " VALUES ($1, 'ada@example.com', 'Ada', 'W-1', 'webshop')",
                [(o,) for o in orders],
            )
            # when that instance keeps its renderings, and another tries to while the first has not committed
            kept = await repository.keep_rendered(one, planned, 120.0)
            passed_over = await asyncio.wait_for(repository.keep_rendered(other, planned, 120.0), 5)
        # and again once it has
        again = await repository.keep_rendered(other, planned, 120.0)
    finally:
        await one.close()
        await other.close()

    # then the first kept both, each with a delivery per channel and what to send it with
    assert sorted((r["order_id"], r["channel"], r["subject"], r["email"]) for r in kept) == sorted(
        (o, channel, "Confirmed", "ada@example.com") for o in orders for channel in ("crm", "email")
    )
    # and the other kept none, without waiting for the first: passed over while claimed, rendered afterwards
    assert passed_over == [] and again == []
    rows = await db.fetch(
        "SELECT m.subject, count(d.channel) AS deliveries FROM notifications.messages m"
        " LEFT JOIN notifications.deliveries d USING (order_id, kind, shipment_key)"
        " WHERE m.order_id = ANY($1::uuid[]) GROUP BY m.order_id, m.subject",
        orders,
    )
    assert sorted((r["subject"], r["deliveries"]) for r in rows) == [("Confirmed", 2), ("Confirmed", 2)]
