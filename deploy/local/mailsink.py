"""The local SMTP sink's mailbox: a Maildir that, as mail systems do with a repeated Message-ID, keeps one copy of a
message however often it is handed over. A sender that crashes between the hand-off and recording it sends the
message again (its Message-ID is stable); the repeat is accepted and dropped, and noted in `mail-repeats.jsonl`
beside the Maildir with the order, kind and shipment it is about (never the address), so the tests and the
chaos run can count how often that happened.

Started by deploy/local/stack.py: python -m aiosmtpd -c deploy.local.mailsink.OnceMailbox MAILDIR
"""

from __future__ import annotations

import json
import mailbox
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.handlers import Mailbox

REPEATS_FILE = "mail-repeats.jsonl"


def message_ids(mail_dir: Path) -> set[str]:
    """The Message-IDs of what the Maildir holds already (read at start: the sink may have been restarted)."""
    box = mailbox.Maildir(mail_dir, factory=None, create=True)
    parser = BytesHeaderParser()
    found = set()
    for key in box.iterkeys():
        with box.get_file(key) as handle:
            message_id = parser.parse(handle).get("Message-ID")  # type: ignore[arg-type]
        if message_id:
            found.add(message_id.strip())
    return found


class OnceMailbox(Mailbox):
    def __init__(self, mail_dir: str, *args: Any) -> None:
        super().__init__(Path(mail_dir), *args)
        self.repeats = Path(mail_dir).parent / REPEATS_FILE
        self.seen = message_ids(Path(mail_dir))

    def handle_message(self, message: Message) -> None:
        message_id = (message.get("Message-ID") or "").strip()
        if message_id and message_id in self.seen:
            note = {
                "message_id": message_id,
                "order_id": message.get("X-OMS-Order-Id"),
                "kind": message.get("X-OMS-Message-Kind"),
                "shipment_key": message.get("X-OMS-Shipment-Key"),
                "at": datetime.now(UTC).isoformat(),
            }
            with self.repeats.open("a") as out:
                out.write(json.dumps(note) + "\n")
            return
        super().handle_message(message)
        if message_id:
            self.seen.add(message_id)
