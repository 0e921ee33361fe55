"""The local SMTP sink's mailbox: a Maildir that, as mail systems do with a repeated Message-ID, keeps one copy of a
message however often it is handed over. A sender that crashes between the hand-off and recording it sends the
message again (its Message-ID is stable); the repeat is accepted and dropped, and noted in `mail-repeats.jsonl`
beside the Maildir with the order, kind and shipment it is about (never the address), so the tests and the
chaos run can count how often that happened.

A message is stored as it was received (line ends as a Unix mail store keeps them, the envelope in X-Peer,
X-MailFrom and X-RcptTo headers on top); only its header block is read, for the Message-ID and what a repeat is
about. Parsing each whole message into objects and writing it out again took most of the sink's CPU; so did
aiosmtpd's reading of the addresses in MAIL and RCPT, done here more cheaply for plain addresses, on uvloop.

A message is written as Maildir delivers (a file under tmp/, renamed into new/) without Python's mailbox module,
which flushes each message to the disk before the reply. That flush cost the sink five times the CPU of the rest
of storing a message, stalled its one event loop for half a millisecond each time, and put three disk flushes per
order beside PostgreSQL's own. A stand-in mail server needs to survive its own crash, which the page cache
does; a crash of the whole machine may lose the last messages it took, as it may lose the machine's other
scratch state.

Started by deploy/local/stack/smtp.py: python -m deploy.local.mailsink --listen HOST:PORT MAILDIR
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import re
import socket
import time
from argparse import ArgumentParser
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.smtp import MISSING, SMTP, syntax

REPEATS_FILE = "mail-repeats.jsonl"
# The headers the sink reads; every other one is passed over.
READ = ("message-id", "x-oms-order-id", "x-oms-message-kind", "x-oms-shipment-key")


def header_fields(message: bytes, names: tuple[str, ...] = READ) -> dict[str, str]:
    """The named headers (lower-case names) of a message's header block, unfolded; the first of each counts."""
    end = message.find(b"\n\n")
    if end < 0:
        end = message.find(b"\r\n\r\n")
    block = message if end < 0 else message[:end]
    found: dict[str, str] = {}
    name = ""
    for line in block.decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t"):  # a folded header goes on
            if name in found:
                found[name] += line
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if colon and name in names and name not in found:
            found[name] = value
        else:
            name = ""
    return {key: value.strip() for key, value in found.items()}


def stored_name(message_id: str) -> str:
    """The part of a stored message's file name that names its Message-ID (a digest: an id may hold any text)."""
    return "M" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:32]


STORED_NAME = re.compile(r"M[0-9a-f]{32}(?=[.:]|$)")


def message_ids(mail_dir: Path) -> set[str]:
    """The Message-IDs of what the Maildir holds already, as `stored_name`s (read at start: the sink may have been
    restarted). A file's name says it; a file stored without it in its name (by an earlier sink) is opened once.
    Opening every file kept the sink from starting within 30 s on a Maildir that benchmark runs had filled;
    listing 650,000 names takes a second."""
    for folder in ("tmp", "new", "cur"):  # a Maildir's three, created when missing
        (mail_dir / folder).mkdir(parents=True, exist_ok=True)
    found = set()
    for folder in ("new", "cur"):
        for entry in os.scandir(mail_dir / folder):
            named = STORED_NAME.search(entry.name)
            if named is not None:
                found.add(named.group())
                continue
            with open(entry.path, "rb") as handle:
                message_id = header_fields(handle.read(), ("message-id",)).get("message-id")
            if message_id:
                stored = stored_name(message_id)
                found.add(stored)
                # Renamed as this sink names what it stores, so that the next start need not open it again.
                unique, colon, flags = entry.name.partition(":")
                os.rename(entry.path, mail_dir / folder / f"{unique}{stored}{colon}{flags}")
    return found


class OnceMailbox:
    """An aiosmtpd handler: every message accepted is in the Maildir once."""

    def __init__(self, mail_dir: str) -> None:
        self.mail_dir = Path(mail_dir)
        self.staging, self.arrived = str(self.mail_dir / "tmp"), str(self.mail_dir / "new")
        self.pid = os.getpid()
        self.delivered = 0
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")
        self.repeats = self.mail_dir.parent / REPEATS_FILE
        self.seen = message_ids(self.mail_dir)

    @classmethod
    def from_cli(cls, parser: ArgumentParser, *args: str) -> OnceMailbox:
        if len(args) != 1:
            parser.error("the Maildir is the handler's one argument")
        return cls(args[0])

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's answer to EHLO, offering PIPELINING too (RFC 2920): its sessions read the commands a client
        sends at once one after the other, as they would read them one at a time; and CHUNKING (RFC 3030), which
        `Sink` reads."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-CHUNKING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        envelope_headers = (
            f"X-Peer: {session.peer}\nX-MailFrom: {envelope.mail_from}\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\n"
        )
        self.keep(envelope_headers.encode() + envelope.original_content)
        return "250 OK"

    def keep(self, message: bytes) -> bool:
        """Store the message unless one with its Message-ID is stored already (then note the repeat); whether it
        was stored."""
        message = message.replace(b"\r\n", b"\n")
        fields = header_fields(message)
        message_id = fields.get("message-id", "")
        stored = stored_name(message_id) if message_id else ""
        if stored and stored in self.seen:
            note = {
                "message_id": message_id,
                "order_id": fields.get("x-oms-order-id"),
                "kind": fields.get("x-oms-message-kind"),
                "shipment_key": fields.get("x-oms-shipment-key"),
                "at": datetime.now(UTC).isoformat(),
            }
            with self.repeats.open("a") as out:
                out.write(json.dumps(note) + "\n")
            return False
        self.deliver(message, stored)
        if stored:
            self.seen.add(stored)
        return True

    def deliver(self, message: bytes, stored: str) -> None:
        """Maildir's delivery: the whole file under tmp/, then renamed into new/, so a reader never sees half. Its
        unique name carries the Message-ID's `stored_name`, read at the next start. Written with the os module's
        calls: a file object and pathlib's paths cost more than the writing (six system calls where three do)."""
        self.delivered += 1
        name = f"{time.time_ns()}.P{self.pid}Q{self.delivered}{stored}.{self.host}"
        staged = f"{self.staging}/{name}"
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            written = 0
            while written < len(message):
                written += os.write(descriptor, message[written:])
        finally:
            os.close(descriptor)
        os.rename(staged, f"{self.arrived}/{name}")


# <local@domain> with nothing in it that needs the full address grammar (quotes, comments, routes, spaces).
PLAIN_PATH = re.compile(r"\s*<([^<>()\[\]\\,;:\s\"@]+@[^<>()\[\]\\,;:\s\"@]+)>(.*)", re.DOTALL)


BDAT_ARGUMENTS = re.compile(r"(\d{1,9})(?: +(LAST))?", re.IGNORECASE)


class Sink(SMTP):
    """aiosmtpd's SMTP session, reading a plain `<local@domain>` path in MAIL and RCPT without the e-mail header
    parser (aiosmtpd also defines a class on each call); anything else is read as aiosmtpd reads it. Replies to
    pipelined commands go out together, once the commands the client sent at once are answered.

    It reads BDAT too (RFC 3030), which aiosmtpd does not: a message in chunks of a stated size, read whole, where
    DATA reads a message line by line looking for its end and undoing dot-stuffing. With PIPELINING a client may
    send many messages before it reads a reply, and their replies go out together."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replies: list[bytes] = []
        self._chunks: list[bytes] = []
        self._chunks_refused: str | None = None  # the reply to every chunk after one was refused, until LAST

    def _set_rset_state(self) -> None:
        super()._set_rset_state()  # type: ignore[no-untyped-call]
        self._chunks.clear()
        self._chunks_refused = None

    @syntax("BDAT <size> [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        given = BDAT_ARGUMENTS.fullmatch(arg or "")
        if given is None:
            # Without a size the chunk cannot be told from the commands after it: the session cannot go on.
            await self.push("421 Syntax: BDAT <size> [LAST]; closing", now=True)
            if self.transport is not None:
                self.transport.close()
            return
        size, last = int(given.group(1)), given.group(2) is not None
        if self._chunks_refused is None:
            self._chunks_refused = self._refusal(size)
        if self._chunks_refused is not None:
            # Read past a refused chunk all the same, so that the next command is found; nothing of it kept.
            self._chunks.clear()
            await self._skip(size)
            reply = self._chunks_refused
        elif not last:
            self._chunks.append(await self._reader.readexactly(size))
            reply = f"250 {size} octets received"
        else:
            content = b"".join([*self._chunks, await self._reader.readexactly(size)])
            assert self.envelope is not None  # set as the session begins
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            reply = "250 OK" if status is MISSING else status
        if last:
            self._set_rset_state()
        await self.push(reply)

    async def _skip(self, size: int) -> None:
        while size:
            skipped = await self._reader.read(min(size, 1 << 16))
            if not skipped:
                raise asyncio.IncompleteReadError(b"", size)
            size -= len(skipped)

    def _refusal(self, size: int) -> str | None:
        """Why the next chunk of `size` octets cannot be taken, if it cannot."""
        assert self.session is not None and self.envelope is not None  # set as the session begins
        if not self.session.host_name:
            return "503 Error: send HELO first"
        if not self.envelope.rcpt_tos:
            return "503 Error: need RCPT command"
        if self.data_size_limit and sum(map(len, self._chunks)) + size > self.data_size_limit:
            return "552 Error: Too much mail data"
        return None

    async def push(self, status: str | bytes, now: bool = False) -> None:
        reply = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii") if isinstance(status, str) else status
        self._replies.append(reply + b"\r\n")
        # More of the client's commands already here: it is not waiting for this reply yet.
        if not now and self._reader is not None and getattr(self._reader, "_buffer", None):
            return
        self._writer.write(b"".join(self._replies))
        self._replies.clear()
        await self._writer.drain()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.groups()
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest


async def serve(host: str, port: int, mail_dir: str) -> None:
    handler = OnceMailbox(mail_dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(partial(Sink, handler, enable_SMTPUTF8=True), host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.mailsink", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("maildir")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(level=logging.ERROR)
    uvloop.run(serve(host, int(port), args.maildir))


if __name__ == "__main__":
    main()
