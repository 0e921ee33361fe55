"""The bytes of a customer e-mail as SMTP carries them (RFC 5322 and MIME): the headers, and the text and HTML
parts as quoted-printable UTF-8 under multipart/alternative, with CRLF line ends. Pure: no I/O.

Written out directly rather than through email.message: with the standard library's default policy, building
and flattening each message parsed every header it set and took about 1.4 ms of CPU, most of notifications'
time; this takes a few dozen microseconds and says the same."""

from __future__ import annotations

import binascii
import uuid
from dataclasses import dataclass
from email.header import Header

CRLF = "\r\n"


@dataclass(frozen=True)
class Mail:
    """What a customer e-mail says: `to` as SMTP carries it (ASCII, or UTF-8 for an SMTPUTF8 session)."""

    sender: str
    to: str
    subject: str
    message_id: str
    order_id: str
    kind: str
    shipment_key: str
    text: str
    html: str


def compose(mail: Mail) -> bytes:
    """The message, ready for the DATA command (the SMTP client still dot-stuffs it). ValueError when a header
    value would break the header block (a line break in it)."""
    # "=_" never occurs in quoted-printable ("=" is always written =3D), so no part can contain the boundary.
    boundary = f"=_{uuid.uuid4().hex}"
    headers = [
        ("From", mail.sender),
        ("To", mail.to),
        ("Subject", _encoded(mail.subject, "Subject")),
        ("Message-ID", mail.message_id),
        ("X-OMS-Order-Id", mail.order_id),
        ("X-OMS-Message-Kind", mail.kind),
        ("X-OMS-Shipment-Key", _encoded(mail.shipment_key, "X-OMS-Shipment-Key", fold=False)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative;{CRLF} boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {_checked(name, value)}{CRLF}" for name, value in headers)
    # Each delimiter starts with its own CRLF (RFC 2046), so a part keeps its last line break.
    return b"".join(
        (
            f"{head}{CRLF}--{boundary}{CRLF}".encode(),
            _part("plain", mail.text),
            f"{CRLF}--{boundary}{CRLF}".encode(),
            _part("html", mail.html),
            f"{CRLF}--{boundary}--{CRLF}".encode(),
        )
    )


def _part(subtype: str, body: str) -> bytes:
    head = f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}'
    # Line ends normalised first: quoted-printable keeps a text's own line breaks (a lone CR too), and SMTP
    # takes CRLF only.
    lines = body.replace("\r\n", "\n").replace("\r", "\n").encode()
    return head.encode() + binascii.b2a_qp(lines, istext=True).replace(b"\n", b"\r\n")


def _encoded(value: str, name: str, *, fold: bool = True) -> str:
    """A header value as RFC 2047 encoded words when it is not ASCII; folded at spaces when long."""
    if value.isascii() and (not fold or len(value) + len(name) + 2 <= 78):
        return value
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep=CRLF)


def _checked(name: str, value: str) -> str:
    unfolded = value.replace(f"{CRLF} ", "").replace(f"{CRLF}\t", "")
    if "\r" in unfolded or "\n" in unfolded:
        raise ValueError(f"{name} must not contain a line break")
    return value
