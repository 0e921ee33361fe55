"""A mail server slower than the database's idle-in-transaction timeout: each message is handed over outside any
database transaction, so the record of what was sent survives and nothing is sent twice. Before, the dispatcher
held the claiming transaction open during the SMTP hand-off: the server ended the idle session, the marks were
lost, and every message the mail server had accepted went out again, and again."""

import asyncio
import uuid
from typing import Any

from aiosmtpd.controller import Controller

from tests.factories import order_document
from tests.integration.test_email_addresses import Recorder, received
from tests.scenario import free_port, restart
from tests.waiting import eventually

IDLE_TIMEOUT_MS = 1000


class SlowServer(Recorder):
    """Takes longer to accept a message than a database session may stay idle in a transaction."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(IDLE_TIMEOUT_MS / 1000 * 1.5)
        return await super().handle_DATA(server, session, envelope)


async def test_a_message_to_a_mail_server_slower_than_the_idle_timeout_is_sent_once_and_recorded(
    http, db, pipeline
) -> None:
    # given notifications sending to a mail server that takes 1.5 s per message, its sessions idle-bounded at 1 s
    recorder = SlowServer()
    server = Controller(recorder, hostname="127.0.0.1", port=free_port())
    server.start()
    notifications = pipeline["notifications"]
    settings = {
        "OMS_SMTP_PORT": str(server.port),
        "OMS_DB_IDLE_IN_TX_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
        "OMS_KAFKA_SEND_TIMEOUT_SECONDS": "0.5",  # the relay's wait for the broker stays below the idle timeout
    }
    try:
        await restart(notifications, settings)
        # when an order is refused, so its customer is sent a message
        document = order_document([(f"UNKNOWN-{uuid.uuid4().hex[:8]}", 1)])
        order_id = (await http.post("/v1/orders", json=document)).json()["order_id"]

        # then the delivery is recorded as sent at the first attempt
        delivery = await eventually(
            lambda: db.fetchrow(
                "SELECT status, attempts FROM notifications.deliveries WHERE order_id = $1 AND channel = 'email'",
                uuid.UUID(order_id),
            ),
            lambda row: row is not None and row["status"] != "pending",
            timeout=30,
        )
        assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
    finally:
        await restart(notifications, {})
        server.stop()
    # and the mail server received it once
    assert len(received(recorder.messages, order_id)) == 1
