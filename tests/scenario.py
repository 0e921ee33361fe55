"""Steps the integration scenarios share: seed a catalogue and stock, follow an order, read the mail."""

from __future__ import annotations

import asyncio
import json
import mailbox
import socket
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from pydantic import BaseModel

from deploy.local import processes, scrape
from deploy.local.keys import Bearer
from services.capture.answers import OrderView
from shared.backbone import auth
from shared.backbone.kafka import encode
from shared.contracts import events, topics
from shared.contracts.envelope import wrap
from tests.local import LOCAL, client
from tests.waiting import eventually

FINAL = {"delivered", "rejected"}


async def channel_key(db: asyncpg.Pool, channel: str) -> Bearer:
    """A new API key for a channel the local stack has none for (tests that need a channel of their own)."""
    async with db.acquire() as conn:
        key = await auth.issue(conn, "channel", channel, "test")
    return Bearer(key.token)


def new_skus(count: int, prefix: str = "T") -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{prefix}-{run}-{i}" for i in range(count)]


async def seed(stock: Iterable[tuple[str, str, int]]) -> None:
    """Products in the catalogue and (warehouse, sku, quantity) received, seen by capture and allocation."""
    stock = list(stock)
    await client.publish_products({sku for _, sku, _ in stock})
    await client.publish_receipts(stock, reference=f"seed-{uuid.uuid4()}")
    await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name])
    await client.wait_caught_up("oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name])


def as_documented(answer: httpx.Response, model: type[BaseModel]) -> dict[str, Any]:
    """The answer's body, checked against the shape the service's OpenAPI document gives it (every key declared,
    with its type: the service's answers.py), so that every scenario's real orders, returns and refunds hold the
    document to its word, not only the fuzz test's requests."""
    body: dict[str, Any] = answer.json()
    model.model_validate(body)
    return body


async def order_view(http: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/orders/{order_id}")
    response.raise_for_status()
    return as_documented(response, OrderView)


async def wait_status(
    http: httpx.AsyncClient, order_id: str, statuses: set[str], timeout: float = 45
) -> dict[str, Any]:
    view: dict[str, Any] = await eventually(
        lambda: order_view(http, order_id), lambda v: v["status"] in statuses, timeout=timeout
    )
    return view


# Each stored message's order and kind, by its Maildir key: a message is stored once and never changes, so its
# headers are read once per test session, not on every look (the stack's Maildir keeps every earlier run's mail).
_HEADERS: dict[str, tuple[str | None, str | None]] = {}
# Mail the sink stored before this session (a minute's margin) is about none of its orders, whose ids are new: after
# benchmark runs the stack's Maildir held 953,400 messages, and reading their headers took minutes. The sink's names
# begin with the time it stored the message, in nanoseconds (deploy/local/mailsink.py).
_SESSION_BEGAN_NS = time.time_ns() - 60 * 10**9


def this_sessions_mail() -> tuple[mailbox.Maildir, list[str]]:
    """The stack's Maildir and the keys of the mail stored in it since this session began."""
    box = mailbox.Maildir(LOCAL.maildir, create=False)
    return box, [key for key in box.iterkeys() if _stored_this_session(key)]


def _stored_this_session(key: str) -> bool:
    stored_at = key.split(".", 1)[0]  # a name of another form is kept
    return not stored_at.isdigit() or int(stored_at) >= _SESSION_BEGAN_NS


def _stored() -> tuple[mailbox.Maildir, list[str]]:
    """This session's mail, each key's headers read into `_HEADERS` once."""
    box, keys = this_sessions_mail()
    for key in keys:
        if key not in _HEADERS:
            with box.get_file(key) as stored:
                headers = BytesHeaderParser().parse(stored)  # type: ignore[arg-type]
            _HEADERS[key] = (headers["X-OMS-Order-Id"], headers["X-OMS-Message-Kind"])
    return box, keys


def _mail_of(order_id: str, kind: str | None = None) -> tuple[mailbox.Maildir, list[str]]:
    box, keys = _stored()
    found = [key for key in keys if _HEADERS[key][0] == order_id and kind in (None, _HEADERS[key][1])]
    return box, found


def mail_for(order_id: str) -> list[str]:
    """Kinds of the messages the SMTP server received for this order."""
    return mail_kinds([order_id])[order_id]


def mail_kinds(order_ids: Iterable[str]) -> dict[str, list[str]]:
    """Kinds of the messages the SMTP server received for each of these orders, in one pass over the Maildir."""
    kinds: dict[str, list[str]] = {order_id: [] for order_id in order_ids}
    for key in _stored()[1]:
        order_id, kind = _HEADERS[key]
        if order_id in kinds:
            kinds[order_id].append(str(kind))
    return {order_id: sorted(found) for order_id, found in kinds.items()}


def mails(order_id: str, kind: str | None = None) -> list[Message]:
    """The messages the SMTP server received for this order (of one kind, if given)."""
    box, keys = _mail_of(order_id, kind)
    return [box[key] for key in keys]


def parts(message: Message) -> dict[str, str]:
    """A mail's parts by content type (text/plain, text/html), decoded."""
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")  # type: ignore[union-attr]
        for part in message.walk()
        if not part.is_multipart()
    }


def service_metrics(service: str) -> scrape.Samples:
    """A service's /metrics as Prometheus reads them."""
    return scrape.parse(httpx.get(f"{LOCAL.http_url(service)}/metrics", timeout=10).text)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def restart(process: processes.Process, env: dict[str, str]) -> None:
    """Restart a service with these settings (environment variables) instead of its current ones."""
    await asyncio.to_thread(process.stop)
    process.env = env
    process.start()
    await asyncio.to_thread(process.wait_ready)


async def publish_event(topic: topics.Topic, payload: events.Contract, order_id: UUID) -> None:
    """Publish an event in its envelope as the topic's writer would (for steps another service owns)."""
    envelope = wrap(payload, producer=topic.writer, order_id=order_id)
    await client.publish(topic.name, [(str(order_id), encode(envelope))])


class TopicReader:
    """A plain Kafka consumer, not part of the services: reads a topic from its current end onwards.

    `bodies_for` leaves out envelopes of events that happened before the reader opened: an outbox relay may
    publish an earlier event after the reader has pinned its position, and a test means what follows."""

    def __init__(self, topic: str, principal: str | None = None) -> None:
        """Read as the stack's administrator, or as `principal` (an outside party: its groups start with its name)."""
        access = LOCAL.access() if principal is None else LOCAL.access(principal)
        group = f"{principal or 'test'}-{uuid.uuid4()}"
        self.consumer = access.consumer(topic, group_id=group, auto_offset_reset="latest")
        self.seen: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        self.opened_at = datetime.now(UTC)
        await self.consumer.start()
        # Pin the start positions now, so nothing published after this point can be missed.
        await eventually(self._assigned, bool, timeout=30)
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)
        return self

    async def _assigned(self) -> bool:
        await self.consumer.getmany(timeout_ms=100)
        return bool(self.consumer.assignment())

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read(self) -> list[Any]:
        for records in (await self.consumer.getmany(timeout_ms=200)).values():
            self.seen.extend(records)
        return self.seen

    async def bodies_for(self, order_id: str) -> list[dict[str, Any]]:
        records = await self.read()
        bodies = [json.loads(r.value) for r in records]
        return [
            b
            for b in bodies
            if (b.get("order_id") == order_id or b.get("payload", {}).get("order_id") == order_id)
            and ("occurred_at" not in b or datetime.fromisoformat(b["occurred_at"]) >= self.opened_at)
        ]
