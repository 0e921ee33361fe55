"""A customer e-mail as it goes over SMTP: read back by a standard mail parser, it has the headers the receiver
and the tests rely on and the text and HTML exactly as rendered, whatever the customer's data holds (non-ASCII,
long lines, a line of one dot, stray line breaks), in lines SMTP can carry."""

import email
import email.policy
import uuid
from email.message import EmailMessage

import pytest

from services.notifications import messages
from services.notifications.mime import Mail, compose

ORDER = uuid.uuid4()
SHIPMENT = str(uuid.uuid4())


def mail(**changes: str) -> Mail:
    rendered = messages.render(
        "confirmed",
        ORDER,
        "",
        {"name": "Zoë O'Brien <zoe>", "reference": "WEB-1"},
        {"total": "24.95 EUR", "items": [{"sku": "A", "quantity": 2}]},
    )
    fields = {
        "sender": "orders@oms.local",
        "to": "zoe@example.test",
        "subject": rendered.subject,
        "message_id": messages.message_id(ORDER, "confirmed", ""),
        "order_id": str(ORDER),
        "kind": "confirmed",
        "shipment_key": SHIPMENT,
        "text": rendered.text,
        "html": rendered.html,
    }
    return Mail(**(fields | changes))


def read(data: bytes) -> EmailMessage:
    """As a mail store keeps it: in lines ending in LF."""
    message = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


def test_a_message_reads_back_with_its_headers_and_both_parts_as_rendered() -> None:
    # given a rendered confirmation
    sent = mail()
    # when it is composed and read back by a standard parser
    message = read(compose(sent))
    # then every header is there as given
    assert message.defects == []
    assert {name: str(message[name]) for name in ("From", "To", "Subject", "Message-ID")} == {
        "From": "orders@oms.local",
        "To": "zoe@example.test",
        "Subject": sent.subject,
        "Message-ID": sent.message_id,
    }
    assert (message["X-OMS-Order-Id"], message["X-OMS-Message-Kind"], message["X-OMS-Shipment-Key"]) == (
        str(ORDER),
        "confirmed",
        SHIPMENT,
    )
    # and the text and HTML alternatives are exactly what was rendered, in UTF-8
    assert message.get_content_type() == "multipart/alternative"
    assert parts(message) == {"text/plain": sent.text, "text/html": sent.html}
    assert "Zoë O&#39;Brien &lt;zoe&gt;" in sent.html


def test_customer_data_of_any_shape_survives_and_every_line_is_one_smtp_can_carry() -> None:
    # given text with a long line, a line of one dot, trailing spaces, a lone CR and CRLF, and a non-ASCII subject
    text = "Hallo Zoë,\n" + "lang " * 300 + "\n.\nend with space \nstray\rcr\r\nwindows\n"
    sent = mail(text=text, html="<p>" + "é" * 500 + "</p>", subject="Ihre Bestellung für Zoë " + "x" * 90)
    data = compose(sent)
    # then the bytes are ASCII, in CRLF lines of at most 78 characters, without a bare dot line
    lines = data.split(b"\r\n")
    assert data.isascii() and b"\r" not in b"".join(lines) and b"\n" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 78
    assert b"." not in lines
    # and a parser reads back the same subject and texts (line breaks as \n)
    message = read(data)
    assert str(message["Subject"]) == sent.subject
    assert parts(message) == {
        "text/plain": text.replace("\r\n", "\n").replace("\r", "\n"),
        "text/html": sent.html,
    }


def test_a_non_ascii_mailbox_is_written_as_utf8_for_an_smtputf8_session() -> None:
    message = read(compose(mail(to="jörg@xn--exmple-cua.test")))
    assert str(message["To"]) == "jörg@xn--exmple-cua.test"


@pytest.mark.parametrize("field", ["to", "subject", "shipment_key", "kind"])
def test_a_line_break_in_a_header_value_is_refused_rather_than_starting_a_header(field: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        compose(mail(**{field: "x\r\nBcc: someone@example.test"}))
