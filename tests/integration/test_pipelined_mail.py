"""A mail server that offers PIPELINING (RFC 2920) is sent MAIL, RCPT and DATA together; a recipient it refuses
fails that message alone, the rest of the session is delivered, each message once."""

import asyncio
import uuid
from typing import Any

from aiosmtpd.controller import Controller

from tests.integration.test_email_addresses import Recorder, email_deliveries, received, refused_orders
from tests.scenario import free_port, restart
from tests.waiting import eventually


class PipeliningServer(Recorder):
    """Offers PIPELINING, refuses mailboxes named `refused-…`, and notes whether the client's RCPT had already
    arrived when its MAIL was answered (it was sent together with it)."""

    def __init__(self) -> None:
        super().__init__()
        self.pipelined: list[bool] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.pipelined.append(b"RCPT TO:" in bytes(server._reader._buffer))
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("refused-"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_refused_recipient_fails_alone_in_a_pipelined_session(http, db, pipeline) -> None:
    # given a mail server offering PIPELINING that refuses one customer's mailbox, and notifications stopped
    recorder = PipeliningServer()
    server = Controller(recorder, hostname="127.0.0.1", port=free_port())
    server.start()
    notifications = pipeline["notifications"]
    run = uuid.uuid4().hex[:8]
    addresses = {kind: f"{kind}-{run}@example.test" for kind in ("first", "refused", "third", "fourth")}
    try:
        await asyncio.to_thread(notifications.stop)
        order_ids = await refused_orders(http, addresses)

        # when notifications comes back with that server and sends the four messages in one session
        await restart(notifications, {"OMS_SMTP_PORT": str(server.port), "OMS_RETRY_BASE_SECONDS": "60"})
        deliveries = await eventually(
            lambda: email_deliveries(db, order_ids),
            lambda found: len(found) == 4 and all(attempts == 1 for _, attempts, _ in found.values()),
            timeout=45,
        )
    finally:
        await restart(notifications, {})
        server.stop()

    # then the refused one waits for its retry with the reason, and the others are sent, once each
    assert deliveries.pop("refused") == ("pending", 1, "SMTPRecipientsRefused")
    assert deliveries == dict.fromkeys(["first", "third", "fourth"], ("sent", 1, None))
    assert received(recorder.messages, order_ids["refused"]) == []
    assert [len(received(recorder.messages, order_ids[kind])) for kind in ("first", "third", "fourth")] == [1, 1, 1]
    # and every message's MAIL went out together with its RCPT
    assert recorder.pipelined and all(recorder.pipelined)
