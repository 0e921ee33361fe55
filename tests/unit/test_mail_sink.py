"""The local SMTP sink keeps one copy per Message-ID, as mail systems do: a sender that hands a message over again
(after a crash between the hand-off and recording it) does not put a second copy in the mailbox, and the repeat is
noted with what it was about, never the address."""

import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

from deploy.local.mailsink import REPEATS_FILE, STORED_NAME, OnceMailbox, header_fields


def message(message_id: str) -> bytes:
    mail = EmailMessage()
    mail["To"] = "someone@example.test"
    mail["Message-ID"] = message_id
    mail["X-OMS-Order-Id"] = "0b8e4c1e-0000-4000-8000-000000000001"
    mail["X-OMS-Message-Kind"] = "shipped"
    mail["X-OMS-Shipment-Key"] = "s1"
    mail.set_content("on its way")
    return mail.as_bytes()


def test_a_message_handed_over_again_is_kept_once_and_the_repeat_noted(tmp_path: Path) -> None:
    # given a sink that received a message
    sink = OnceMailbox(str(tmp_path / "mail"))
    sink.keep(message("<a@oms.local>"))
    # when the same message comes again, and another one
    sink.keep(message("<a@oms.local>"))
    sink.keep(message("<b@oms.local>"))
    # then the mailbox holds each once
    assert sorted(m["Message-ID"] for m in mailbox.Maildir(tmp_path / "mail")) == ["<a@oms.local>", "<b@oms.local>"]
    # and nothing is left half-delivered under tmp/
    assert list((tmp_path / "mail" / "tmp").iterdir()) == []
    # and the repeat is noted with what it was about, without the address
    [note] = [json.loads(line) for line in (tmp_path / REPEATS_FILE).read_text().splitlines()]
    assert (note["message_id"], note["kind"], note["shipment_key"]) == ("<a@oms.local>", "shipped", "s1")
    assert "someone@example.test" not in json.dumps(note)


def test_a_restarted_sink_knows_what_its_mailbox_holds(tmp_path: Path) -> None:
    OnceMailbox(str(tmp_path / "mail")).keep(message("<a@oms.local>"))
    restarted = OnceMailbox(str(tmp_path / "mail"))
    restarted.keep(message("<a@oms.local>"))
    assert len(mailbox.Maildir(tmp_path / "mail")) == 1


def test_the_headers_the_sink_reads_are_found_however_they_are_written() -> None:
    # given a header block with folded, repeated, differently cased headers and a body that looks like headers
    message = (
        b"Received: from x\r\n  by y\r\nmessage-id:\r\n <a@oms.local>\r\nX-OMS-Message-Kind: shipped\r\n"
        b"X-OMS-Message-Kind: delivered\r\nSubject: Message-ID: <b@oms.local>\r\n\r\nMessage-ID: <c@oms.local>\r\n"
    )
    # then each is read from the header block only, unfolded, the first of each counting
    assert header_fields(message) == {"message-id": "<a@oms.local>", "x-oms-message-kind": "shipped"}


def test_a_restarted_sink_knows_the_messages_an_earlier_sink_stored_without_their_id_in_the_name(
    tmp_path: Path,
) -> None:
    # given a Maildir holding messages under names that do not say their Message-ID (as earlier sinks stored them),
    # one of them already read by someone (in cur/, flagged seen)
    box = mailbox.Maildir(tmp_path / "mail")
    box.add(message("<old@oms.local>"))
    read = mailbox.MaildirMessage(message("<read@oms.local>"))
    read.set_subdir("cur")
    read.set_flags("S")
    box.add(read)
    # and one stored by this sink
    OnceMailbox(str(tmp_path / "mail")).keep(message("<new@oms.local>"))
    # when a sink starts on it and each comes again
    restarted = OnceMailbox(str(tmp_path / "mail"))
    kept = [restarted.keep(message(f"<{name}@oms.local>")) for name in ("old", "read", "new")]
    # then none is stored twice
    assert kept == [False, False, False]
    assert len(mailbox.Maildir(tmp_path / "mail")) == 3
    # and every file is now named by its Message-ID, the read one still flagged seen
    assert all(STORED_NAME.search(path.name) for path in (tmp_path / "mail").glob("*/*"))
    assert [m.get_flags() for m in mailbox.Maildir(tmp_path / "mail") if m["Message-ID"] == "<read@oms.local>"] == ["S"]
