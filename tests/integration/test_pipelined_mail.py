"""A mail server that offers PIPELINING (RFC 2920) is sent MAIL, RCPT and DATA together, and one that offers
CHUNKING (RFC 3030) too is sent the session's messages in one write; a recipient it refuses fails that message
alone, the rest of the session is delivered, each message once."""

import asyncio
import uuid
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from deploy.local.mailsink import Sink
from tests.integration.test_email_addresses import Recorder, email_deliveries, received, refused_orders
from tests.mail_server import RefusingAndNoting
from tests.scenario import free_port, restart
from tests.waiting import eventually


class PipeliningServer(RefusingAndNoting, Recorder):
    """Offers PIPELINING (and CHUNKING), refuses mailboxes named `refused-…`, and notes what the client sent with
    each MAIL: its RCPT, other messages' MAIL."""

    def __init__(self, chunking: bool) -> None:
        super().__init__()
        self.extensions = ["250-PIPELINING", "250-CHUNKING"] if chunking else ["250-PIPELINING"]

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], *self.extensions, responses[-1]]


class ChunkingController(Controller):
    """Sessions that read BDAT too: the stack's sink's."""

    def factory(self) -> SMTP:
        return Sink(self.handler, **self.SMTP_kwargs)


@pytest.mark.parametrize("chunking", [False, True], ids=["pipelining", "pipelining and chunking"])
async def test_a_refused_recipient_fails_alone_in_a_pipelined_session(http, db, pipeline, chunking: bool) -> None:
    # given a mail server offering PIPELINING (and CHUNKING) that refuses one customer's mailbox, notifications stopped
    recorder = PipeliningServer(chunking)
    server = (ChunkingController if chunking else Controller)(recorder, hostname="127.0.0.1", port=free_port())
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
    # and, where the server takes groups, messages went in one write (another's MAIL there when one's was read);
    # over DATA never (each message's content waits for the server's 354)
    assert (max(recorder.mail_ahead) > 0) is chunking
