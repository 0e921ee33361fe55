"""Where a record goes that the kit cannot hand to your code: one that is not a contract the OMS writes, or one
your handler failed on every attempt. It is kept, with the reason, and the partition goes on (a record that
stopped it would stop every pick task of that warehouse behind it)."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("oms_kit")


@dataclass(frozen=True)
class DeadLetter:
    """A record set aside: where it was read, its bytes, and why."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    reason: str

    @classmethod
    def of(cls, record: Any, reason: str) -> DeadLetter:
        return cls(record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, reason)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason}"


class DeadLetters(Protocol):
    async def put(self, letter: DeadLetter) -> None:
        """Keep the letter durably; raise if it could not be kept (the record is then not committed)."""


class DeadLetterFile:
    """Dead letters appended to a JSON-lines file (the record's bytes in base64: they may hold personal data, so
    the file is yours to protect, and the log says only where the record was and why)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def put(self, letter: DeadLetter) -> None:
        def b64(data: bytes | None) -> str | None:
            return None if data is None else base64.b64encode(data).decode()

        line = {
            "set_aside_at": datetime.now(UTC).isoformat(),
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "timestamp": letter.timestamp,
            "key": b64(letter.key),
            "value": b64(letter.value),
            "reason": letter.reason,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()
        log.error("record set aside in %s: %s", self.path, letter)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
