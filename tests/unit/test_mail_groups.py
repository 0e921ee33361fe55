"""Messages handed over in groups (RFC 3030 CHUNKING, pipelined as RFC 2920 allows): the local sink reads BDAT,
and the notifications' client sends a group's commands and contents in one write and reads the replies after it.
Both sides are real: the sink's session class on a loopback port, smtplib on the client side."""

import asyncio
import smtplib
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from deploy.local.mailsink import OnceMailbox, Sink, header_fields
from services.notifications.channels import AGAIN, Letter, hand_over, takes_groups
from tests.mail_server import RefusingAndNoting

SENDER = "orders@oms.local"


def content(message_id: str, body: str = "on its way\r\n") -> bytes:
    return (
        f"To: someone@example.test\r\nMessage-ID: {message_id}\r\nX-OMS-Message-Kind: shipped\r\n\r\n{body}"
    ).encode()


class Mailbox(RefusingAndNoting, OnceMailbox):
    """The sink's mailbox, refusing mailboxes named `refused-…` and noting what came with each MAIL; what it stores
    kept in order too."""

    def __init__(self, mail_dir: str) -> None:
        super().__init__(mail_dir)
        self.stored: list[bytes] = []

    def deliver(self, message: bytes, stored: str) -> None:
        self.stored.append(message)
        super().deliver(message, stored)


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[tuple[Mailbox, int]]:
    mailbox = Mailbox(str(tmp_path / "mail"))
    server = await asyncio.get_running_loop().create_server(
        partial(Sink, mailbox, enable_SMTPUTF8=True, data_size_limit=4096), "127.0.0.1", 0
    )
    async with server:
        yield mailbox, server.sockets[0].getsockname()[1]


def session(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.ehlo()
    return smtp


def raw_session(port: int, commands: bytes, replies: int) -> list[bytes]:
    """Send EHLO and then `commands` in one write; the first `replies` reply lines after EHLO's."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.send(commands)
        return [b"%d %s" % smtp.getreply() for _ in range(replies)]


async def test_a_group_goes_in_one_write_and_each_message_is_stored_as_sent(sink: tuple[Mailbox, int]) -> None:
    mailbox, port = sink
    # given three messages, one with lines that DATA would have to escape or would take for its end
    tricky = content("<b@oms.local>", ".starts with a dot\r\n.\r\n..two dots\r\nthe end\r\n")
    letters = [
        Letter("anna@example.test", content("<a@oms.local>"), ()),
        Letter("piet@example.test", tricky, ()),
        Letter("kees@example.test", content("<c@oms.local>"), ()),
    ]

    # when they are handed over to a server taking groups
    def send() -> tuple[list[object], bool]:
        with session(port) as smtp:
            assert takes_groups(smtp)
            return hand_over(smtp, SENDER, letters)

    handed, broken = await asyncio.to_thread(send)

    # then each is accepted, the session whole
    assert (handed, broken) == ([None, None, None], False)
    # and each is stored once, byte for byte as sent (line ends as the mailbox keeps them), the envelope on top
    assert all(stored.startswith(b"X-Peer: ('127.0.0.1', ") for stored in mailbox.stored)
    assert [stored.split(b"\n", 3)[1:] for stored in mailbox.stored] == [
        [
            b"X-MailFrom: " + SENDER.encode(),
            f"X-RcptTo: {letter.to}".encode(),
            letter.content.replace(b"\r\n", b"\n"),
        ]
        for stored, letter in zip(mailbox.stored, letters, strict=True)
    ]
    # and the three came in one write: at the first MAIL, the other two were there already
    assert mailbox.mail_ahead == [2, 1, 0]


async def test_a_refused_message_fails_alone_and_one_in_doubt_after_it_is_sent_again(
    sink: tuple[Mailbox, int],
) -> None:
    mailbox, port = sink
    # given a group with two refused recipients among accepted ones
    letters = [
        Letter("anna@example.test", content("<a@oms.local>"), ()),
        Letter("refused-1@example.test", content("<r1@oms.local>"), ()),
        Letter("refused-2@example.test", content("<r2@oms.local>"), ()),
        Letter("kees@example.test", content("<c@oms.local>"), ()),
    ]

    def send() -> tuple[tuple[list[object], bool], tuple[list[object], bool]]:
        with session(port) as smtp:
            first = hand_over(smtp, SENDER, letters)
            # the message in doubt, sent again in the same session
            again = hand_over(smtp, SENDER, [letters[2]])
            return first, again

    # when the group is handed over
    (handed, broken), (handed_again, broken_again) = await asyncio.to_thread(send)

    # then the first refusal is the message's own; the refusal after it is in doubt, to be sent again
    assert not broken
    assert handed[0] is None and handed[3] is None
    assert isinstance(handed[1], smtplib.SMTPRecipientsRefused)
    assert handed[2] is AGAIN
    # and sent again after the group's RSET, first of its group, its refusal is its own
    assert not broken_again
    assert [type(result) for result in handed_again] == [smtplib.SMTPRecipientsRefused]
    # and only the accepted ones are stored
    assert [header_fields(stored)["message-id"] for stored in mailbox.stored] == ["<a@oms.local>", "<c@oms.local>"]


async def test_the_sink_reads_a_message_in_chunks_and_reads_past_chunks_it_refuses(sink: tuple[Mailbox, int]) -> None:
    mailbox, port = sink
    message = content("<a@oms.local>")
    head, tail = message[:10], message[10:]
    too_big = b"x" * 5000
    commands = (
        # a message in two chunks
        b"MAIL FROM:<orders@oms.local>\r\nRCPT TO:<anna@example.test>\r\n"
        + b"BDAT %d\r\n%s" % (len(head), head)
        + b"BDAT %d LAST\r\n%s" % (len(tail), tail)
        # a chunk with no recipient: refused, and its octets not taken for commands
        + b"BDAT 12 LAST\r\nRSET\r\nQUIT\r\n"
        # a message over the size limit: refused, read past
        + b"MAIL FROM:<orders@oms.local>\r\nRCPT TO:<anna@example.test>\r\n"
        + b"BDAT %d LAST\r\n%s" % (len(too_big), too_big)
        + b"NOOP\r\n"
    )

    replies = await asyncio.to_thread(raw_session, port, commands, 9)

    assert [reply.split(b" ")[0] for reply in replies] == [
        b"250",  # MAIL
        b"250",  # RCPT
        b"250",  # the first chunk
        b"250",  # LAST: stored
        b"503",  # a chunk with no recipient
        b"250",  # MAIL
        b"250",  # RCPT
        b"552",  # too much
        b"250",  # NOOP, found after the chunk read past
    ]
    assert len(mailbox.stored) == 1
    assert mailbox.stored[0].endswith(message.replace(b"\r\n", b"\n"))


async def test_a_chunk_without_its_size_ends_the_session(sink: tuple[Mailbox, int]) -> None:
    _, port = sink

    def send() -> tuple[list[bytes], bool]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.send(b"BDAT many LAST\r\nNOOP\r\n")
            reply = [b"%d %s" % smtp.getreply()]
            try:
                smtp.noop()
            except (smtplib.SMTPServerDisconnected, OSError):
                return reply, True
            return reply, False

    (reply, closed) = await asyncio.to_thread(send)
    assert reply[0].startswith(b"421 ") and closed
