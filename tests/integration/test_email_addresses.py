"""Customers with internationalised e-mail addresses: delivered where the mail server offers SMTPUTF8, set
aside with the reason where it does not, and never in the way of the other messages of the same session."""

import asyncio
import email
import email.policy
import smtplib
import uuid
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import free_port, restart, this_sessions_mail
from tests.waiting import eventually


def customers(run: str) -> dict[str, str]:
    """Addresses by kind: a non-ASCII mailbox and domain, a non-ASCII domain only, and two plain ones."""
    return {
        "mailbox": f"jörg-{run}@exämple.test",
        "domain": f"anna-{run}@exämple.test",
        "plain": f"piet-{run}@example.test",
        "plain too": f"kees-{run}@example.test",
    }


async def refused_orders(http, addresses: dict[str, str]) -> dict[str, str]:
    """One order per address that capture rejects at once (an unknown SKU), so each customer is sent a message."""
    order_ids = {}
    for kind, address in addresses.items():
        document = order_document([(f"UNKNOWN-{uuid.uuid4().hex[:8]}", 1)])
        document["customer"]["email"] = address
        response = await http.post("/v1/orders", json=document)
        assert response.status_code == 202, response.text
        order_ids[kind] = response.json()["order_id"]
    return order_ids


async def email_deliveries(db, order_ids: dict[str, str]) -> dict[str, tuple[str, int, str | None]]:
    """(status, attempts, last error) of each order's e-mail delivery, by the kind of its address."""
    rows = await db.fetch(
        "SELECT order_id, status, attempts, last_error FROM notifications.deliveries"
        " WHERE channel = 'email' AND order_id = ANY($1::uuid[])",
        [uuid.UUID(o) for o in order_ids.values()],
    )
    by_order = {str(r["order_id"]): (r["status"], r["attempts"], r["last_error"]) for r in rows}
    return {kind: by_order[order_id] for kind, order_id in order_ids.items() if order_id in by_order}


def settled(deliveries: dict[str, tuple[str, int, str | None]]) -> bool:
    return len(deliveries) == 4 and all(status != "pending" for status, _, _ in deliveries.values())


def received(messages: list[EmailMessage], order_id: str) -> list[EmailMessage]:
    return [m for m in messages if m["X-OMS-Order-Id"] == order_id]


def maildir_messages() -> list[EmailMessage]:
    """What the stack's SMTP sink received, parsed as UTF-8 mail (RFC 6532) so that addresses read as sent."""
    box, keys = this_sessions_mail()
    return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in keys]


async def test_every_customer_is_mailed_when_the_server_offers_smtputf8(http, db) -> None:
    # given the stack's mail server, which offers SMTPUTF8
    with smtplib.SMTP("127.0.0.1", LOCAL.ports.smtp, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("smtputf8"), "the SMTP sink predates SMTPUTF8: restart the stack"
    addresses = customers(uuid.uuid4().hex[:8])

    # when customers with internationalised and plain addresses are to be told about their orders
    order_ids = await refused_orders(http, addresses)

    # then every one of them is mailed, at the first attempt, at the address as given (domain in IDNA form)
    deliveries = await eventually(lambda: email_deliveries(db, order_ids), settled)
    assert {kind: status[:2] for kind, status in deliveries.items()} == dict.fromkeys(addresses, ("sent", 1))
    mail = await eventually(maildir_messages, lambda seen: all(received(seen, o) for o in order_ids.values()))
    assert {kind: received(mail, order_ids[kind])[0]["To"] for kind in addresses} == {
        kind: address.replace("exämple", "xn--exmple-cua") for kind, address in addresses.items()
    }


class Recorder:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(message)
        return "250 OK"


async def test_an_address_the_server_cannot_carry_is_set_aside_and_the_rest_of_the_session_is_delivered(
    http, db, pipeline
) -> None:
    # given a mail server that does not offer SMTPUTF8, and notifications stopped while orders come in
    recorder = Recorder()
    server = Controller(recorder, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    server.start()
    notifications = pipeline["notifications"]
    try:
        await asyncio.to_thread(notifications.stop)
        addresses = customers(uuid.uuid4().hex[:8])
        order_ids = await refused_orders(http, addresses)

        # when notifications comes back with that server, and sends their messages in one session
        await restart(notifications, {"OMS_SMTP_PORT": str(server.port), "OMS_RETRY_BASE_SECONDS": "0.2"})
        deliveries = await eventually(lambda: email_deliveries(db, order_ids), settled, timeout=45)
    finally:
        await restart(notifications, {})
        server.stop()

    # then the address with a non-ASCII mailbox is set aside at once, with the reason and no retries
    assert deliveries.pop("mailbox") == (
        "undeliverable",
        1,
        "the recipient's address needs SMTPUTF8 (a non-ASCII mailbox name), which the mail server does not offer",
    )
    assert received(recorder.messages, order_ids["mailbox"]) == []
    # and every other message went out at the first attempt, the non-ASCII domain in its IDNA form
    assert deliveries == dict.fromkeys(["domain", "plain", "plain too"], ("sent", 1, None))
    assert [received(recorder.messages, order_ids[kind])[0]["To"] for kind in ("domain", "plain")] == [
        addresses["domain"].replace("exämple", "xn--exmple-cua"),
        addresses["plain"],
    ]
