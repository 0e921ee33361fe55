"""The stack's SMTP sink as a mail server: a message handed over in an SMTP session is stored once, byte for byte as
sent (dot-stuffing undone, line ends as a mail store keeps them), with the envelope on top; the same Message-ID
handed over again is accepted and noted as a repeat, not stored twice; SMTPUTF8 carries a non-ASCII mailbox."""

import asyncio
import json
import smtplib
import uuid

from deploy.local.mailsink import REPEATS_FILE
from tests.local import LOCAL
from tests.scenario import this_sessions_mail
from tests.waiting import eventually


def message(message_id: str, to: str) -> bytes:
    return (
        f"From: orders@oms.local\r\nTo: {to}\r\nSubject: Your order\r\nMessage-ID: {message_id}\r\n"
        f"X-OMS-Order-Id: {uuid.uuid4()}\r\nX-OMS-Message-Kind: shipped\r\nX-OMS-Shipment-Key: s1\r\n\r\n"
        ".\r\n..starts with dots\r\nthe end\r\n"
    ).encode()


def send(data: bytes, to: str) -> None:
    with smtplib.SMTP(LOCAL.host, LOCAL.ports.smtp, timeout=10) as smtp:
        options = [] if to.isascii() else ["SMTPUTF8"]
        smtp.sendmail("orders@oms.local", [to], data, options)
        smtp.sendmail("orders@oms.local", [to], data, options)


def stored(message_id: str) -> list[bytes]:
    box, keys = this_sessions_mail()
    header = f"Message-ID: {message_id}\n".encode()
    return [data for data in (box.get_bytes(key) for key in keys) if header in data]


def repeats(message_id: str) -> list[dict[str, str]]:
    path = LOCAL.state / REPEATS_FILE
    notes = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [note for note in notes if note["message_id"] == message_id]


async def test_a_message_sent_twice_is_stored_once_as_sent_and_the_repeat_noted(stack) -> None:
    # given a message for a plain and one for a non-ASCII mailbox
    for to in (f"anna-{uuid.uuid4().hex[:8]}@example.test", f"jörg-{uuid.uuid4().hex[:8]}@example.test"):
        message_id = f"<{uuid.uuid4()}@oms.local>"
        data = message(message_id, to)
        # when each is handed to the sink twice in one SMTP session
        await asyncio.to_thread(send, data, to)
        # then the mailbox holds it once: the envelope on top, then the message as sent
        (kept,) = await eventually(lambda message_id=message_id: stored(message_id), bool)  # type: ignore[misc]
        envelope, _, as_sent = kept.partition(b"\nFrom: ")
        assert envelope.endswith(f"\nX-MailFrom: orders@oms.local\nX-RcptTo: {to}".encode())
        assert b"From: " + as_sent == data.replace(b"\r\n", b"\n")
        # and the repeat is noted, without the address
        (note,) = repeats(message_id)
        assert (note["kind"], note["shipment_key"]) == ("shipped", "s1")
        assert to not in json.dumps(note)
