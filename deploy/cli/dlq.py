"""Dead letters: list them and replay them to the topic they came from once the cause is fixed.

A dead-letter record keeps the original key, value and headers and adds `dlq.*` headers (reason, origin,
service, time); its id is `<dlq topic>:<partition>:<offset>`. Replaying publishes the original record
to its origin topic with `oms.replay.of` naming the dead letter, and then writes a marker (no value,
header `oms.replayed`) into the dead-letter topic, so that listings and `--all` skip what was replayed.

Replays are safe to repeat: a record keeps its event id (envelopes carry it in the body; for bare
records from outside, the replay sends the id the original record had as the `event_id` header), so the
services' inbox skips a second replay of a record that went through. A replay that fails again is
dead-lettered again like any record, with `oms.replay.of` still on it: nothing replays automatically,
so nothing loops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from deploy.cli.kafka_admin import bootstrap, read_to_end
from shared.envelope import external_event_id, now
from shared.kafka import Origin
from shared.topics import BY_NAME, DEAD_LETTER_TOPICS

REPLAY_OF = "oms.replay.of"
REPLAYED_AT = "oms.replayed_at"
REPLAYED_MARKER = "oms.replayed"
EVENT_ID = "event_id"


@dataclass(frozen=True)
class DeadLetter(Origin):
    """A record read from a dead-letter topic (where it sits; its origin is in its `dlq.*` headers)."""

    @property
    def id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def origin_topic(self) -> str:
        return self.header("dlq.origin.topic") or ""

    @property
    def is_marker(self) -> bool:
        return self.header(REPLAYED_MARKER) is not None

    def summary(self, replayed: bool) -> dict[str, Any]:
        """What an operator needs to decide; the record's value is left out (it may hold personal data),
        the key is shown (keys are order, warehouse, SKU or channel references)."""
        return {
            "id": self.id,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "origin": f"{self.origin_topic}:{self.header('dlq.origin.partition')}:{self.header('dlq.origin.offset')}",
            "service": self.header("dlq.service"),
            "failed_at": self.header("dlq.failed_at"),
            "reason": self.header("dlq.reason"),
            "bytes": len(self.value or b""),
            "replay_of": self.header(REPLAY_OF),
            "replayed": replayed,
        }

    def replay_headers(self) -> list[tuple[str, bytes | None]]:
        kept = [(k, v) for k, v in self.headers if not k.startswith("dlq.") and k not in (REPLAY_OF, REPLAYED_AT)]
        if BY_NAME[self.origin_topic].external and not any(k == EVENT_ID for k, _ in kept):
            # The id the services derived for the original record from its position; the replay lands
            # elsewhere, so it must carry that id to be recognised as the same event.
            partition, offset = (
                int(self.header("dlq.origin.partition") or 0),
                int(self.header("dlq.origin.offset") or 0),
            )
            kept.append((EVENT_ID, str(external_event_id(self.origin_topic, partition, offset)).encode()))
        return [*kept, (REPLAY_OF, self.id.encode()), (REPLAYED_AT, now().isoformat().encode())]


@dataclass(frozen=True)
class Listing:
    letters: list[DeadLetter]
    replayed: set[str]

    def pending(self) -> list[DeadLetter]:
        return [d for d in self.letters if d.id not in self.replayed]

    def find(self, dead_letter_id: str) -> DeadLetter:
        for letter in self.letters:
            if letter.id == dead_letter_id:
                return letter
        raise LookupError(f"no dead letter {dead_letter_id} (ids look like oms.dead-letter.capture:0:12)")


def matches(letter: DeadLetter, topic: str | None) -> bool:
    """--topic names either the origin topic or a dead-letter topic."""
    return topic is None or topic in (letter.origin_topic, letter.topic)


async def listing(topic: str | None = None, progress: Callable[[int, int], None] | None = None) -> Listing:
    records = await read_to_end((t.name for t in DEAD_LETTER_TOPICS), progress)
    letters = [DeadLetter.of(r) for r in records]
    replayed = {m.header(REPLAYED_MARKER) or "" for m in letters if m.is_marker}
    return Listing([d for d in letters if not d.is_marker and matches(d, topic)], replayed)


async def replay(
    letters: Iterable[DeadLetter], progress: Callable[[DeadLetter], None] | None = None
) -> list[dict[str, Any]]:
    """Publish each dead letter to its origin topic, then mark it replayed; returns where each one went."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), enable_idempotence=True)
    await producer.start()
    done = []
    try:
        for letter in letters:
            if letter.origin_topic not in BY_NAME:
                raise ValueError(f"{letter.id} has no known origin topic ({letter.origin_topic!r})")
            sent = await producer.send_and_wait(
                letter.origin_topic, letter.value, key=letter.key, headers=letter.replay_headers()
            )
            # The marker only after the replay is on the broker: a crash in between means replaying again,
            # which the kept event id makes harmless.
            await producer.send_and_wait(
                letter.topic,
                None,
                key=letter.key,
                partition=letter.partition,
                headers=[
                    (REPLAYED_MARKER, letter.id.encode()),
                    ("oms.replayed_to", f"{sent.topic}:{sent.partition}:{sent.offset}".encode()),
                    (REPLAYED_AT, now().isoformat().encode()),
                ],
            )
            done.append({"id": letter.id, "replayed_to": f"{sent.topic}:{sent.partition}:{sent.offset}"})
            if progress is not None:
                progress(letter)
    finally:
        await producer.stop()
    return done
