"""Dead letters: list them and replay them to the topic they came from once the cause is fixed.

A dead-letter record keeps the original key, value and headers and adds `dlq.*` headers (reason, origin,
service, time); its id is `<dlq topic>:<partition>:<offset>`. Replaying publishes the original record
to its origin topic with `oms.replay.of` naming the dead letter, and then writes a marker (no value,
header `oms.replayed`) into the dead-letter topic, so that listings and `--all` skip what was replayed.

Some dead letters are kept in the service's `dead_letters` table instead (the topic could not take them:
too large once the dead-letter headers were added, or refused); their ids are `<service>.dead_letters:<id>`
and a replay marks the row. The CLI reads those tables as each service's own database role (with the password
the local stack's settings give that role). The small pointer records
(`dlq.stored`) the services publish for them are not listed twice. A dead letter for a record the Kafka
client could not parse (`dlq.unreadable`) names its origin only and cannot be replayed from here.

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
from uuid import UUID

import asyncpg

from deploy.cli.kafka_admin import read_to_end
from deploy.local.settings import LocalStack
from shared.backbone.db import connect
from shared.backbone.dlq import STORED, UNREADABLE
from shared.backbone.kafka import Origin
from shared.contracts.envelope import external_event_id, now
from shared.contracts.topics import BY_NAME, DEAD_LETTER_TOPICS, SERVICES, dead_letter_topic, inputs

REPLAY_OF = "oms.replay.of"
REPLAYED_AT = "oms.replayed_at"
REPLAYED_MARKER = "oms.replayed"
EVENT_ID = "event_id"
STORED_TABLE = "dead_letters"


@dataclass(frozen=True)
class DeadLetter(Origin):
    """A dead letter: a record of a dead-letter topic (its origin in its `dlq.*` headers), or a row of a
    service's dead_letters table (`stored_id` set, `topic` naming the table, the same `dlq.*` headers)."""

    stored_id: int | None = None

    @property
    def id(self) -> str:
        if self.stored_id is not None:
            return f"{self.topic}:{self.stored_id}"
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def origin_topic(self) -> str:
        return self.header("dlq.origin.topic") or ""

    @property
    def service(self) -> str:
        """The service that set the record aside: the writer of the dead-letter topic it was read from, or the
        owner of the table it was read from; never the record's own `dlq.service` header, which proves nothing."""
        if self.stored_id is not None:
            return self.topic.split(".", 1)[0]
        topic = BY_NAME.get(self.topic)
        return topic.writer if topic is not None else ""

    @property
    def is_marker(self) -> bool:
        return self.header(REPLAYED_MARKER) is not None

    @property
    def is_pointer(self) -> bool:
        """A record that only points at a dead letter kept in a service's table (listed from there)."""
        return self.header(STORED) is not None

    @property
    def unreadable(self) -> bool:
        return self.header(UNREADABLE) is not None

    @property
    def origin(self) -> str:
        return f"{self.origin_topic}:{self.header('dlq.origin.partition')}:{self.header('dlq.origin.offset')}"

    def summary(self, replayed: bool) -> dict[str, Any]:
        """What an operator needs to decide; the record's value is left out (it may hold personal data),
        the key is shown (keys are order, warehouse, SKU or channel references)."""
        return {
            "id": self.id,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "origin": self.origin,
            "service": self.header("dlq.service"),
            "failed_at": self.header("dlq.failed_at"),
            "reason": self.header("dlq.reason"),
            "bytes": len(self.value or b""),
            "replay_of": self.header(REPLAY_OF),
            "replayed": replayed,
            "stored": self.stored_id is not None,
            "replayable": not self.unreadable,
        }

    def original_event_id(self) -> UUID:
        """What the services derived for the original record: from its origin, timestamp, key and value (the
        dead letter keeps the original key and value; dead letters from before the timestamp was kept
        in `dlq.origin.timestamp` give -1 there, which is stable too)."""
        return external_event_id(
            self.origin_topic,
            int(self.header("dlq.origin.partition") or 0),
            int(self.header("dlq.origin.offset") or 0),
            int(self.header("dlq.origin.timestamp") or -1),
            self.key,
            self.value,
        )

    def replay_headers(self) -> list[tuple[str, bytes | None]]:
        kept = [(k, v) for k, v in self.headers if not k.startswith("dlq.") and k not in (REPLAY_OF, REPLAYED_AT)]
        if BY_NAME[self.origin_topic].external and not any(k == EVENT_ID for k, _ in kept):
            # The id the services derived for the original record; the replay lands elsewhere, so it must
            # carry that id to be recognised as the same event.
            kept.append((EVENT_ID, str(self.original_event_id()).encode()))
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
        raise LookupError(
            f"no dead letter {dead_letter_id} (ids look like oms.dead-letter.capture:0:12 or capture.dead_letters:3)"
        )


def matches(letter: DeadLetter, topic: str | None) -> bool:
    """--topic names either the origin topic or a dead-letter topic (or a service's dead_letters table)."""
    return topic is None or topic in (
        letter.origin_topic,
        letter.topic,
        dead_letter_topic(letter.header("dlq.service") or ""),
    )


def stored_letter(service: str, row: asyncpg.Record) -> DeadLetter:
    """A row of a service's dead_letters table, with the headers its dead-letter record would have had."""
    dlq = [
        ("dlq.reason", row["reason"].encode()),
        ("dlq.origin.topic", row["origin_topic"].encode()),
        ("dlq.origin.partition", str(row["origin_partition"]).encode()),
        ("dlq.origin.offset", str(row["origin_offset"]).encode()),
        ("dlq.origin.timestamp", str(row["origin_timestamp"]).encode()),
        ("dlq.service", service.encode()),
        ("dlq.failed_at", row["failed_at"].isoformat().encode()),
        *([(UNREADABLE, b"true")] if row["unreadable"] else []),
    ]
    original = [
        (k.decode("utf-8", "replace"), v) for k, v in zip(row["header_keys"], row["header_values"], strict=True)
    ]
    return DeadLetter(
        f"{service}.{STORED_TABLE}",
        -1,
        -1,
        row["key"],
        row["value"],
        (*original, *dlq),
        stored_id=row["id"],
    )


async def _stored(local: LocalStack, service: str) -> list[tuple[DeadLetter, bool]]:
    conn = await connect(local.service_settings(service))
    try:
        rows = await conn.fetch(f"SELECT *, replayed_at IS NOT NULL AS replayed FROM {STORED_TABLE} ORDER BY id")
    finally:
        await conn.close()
    return [(stored_letter(service, r), r["replayed"]) for r in rows]


async def listing(
    local: LocalStack, topic: str | None = None, progress: Callable[[int, int], None] | None = None
) -> Listing:
    records = await read_to_end(local.access(), (t.name for t in DEAD_LETTER_TOPICS), progress)
    letters = [DeadLetter.of(r) for r in records]
    replayed = {m.header(REPLAYED_MARKER) or "" for m in letters if m.is_marker}
    letters = [d for d in letters if not d.is_marker and not d.is_pointer]
    for service in SERVICES:
        for letter, was_replayed in await _stored(local, service):
            letters.append(letter)
            if was_replayed:
                replayed.add(letter.id)
    return Listing([d for d in letters if matches(d, topic)], replayed)


async def replay(
    local: LocalStack, letters: Iterable[DeadLetter], progress: Callable[[DeadLetter], None] | None = None
) -> list[dict[str, Any]]:
    """Publish each dead letter to its origin topic, then mark it replayed; returns where each one went.
    Nothing is published unless every one of them may go back where it came from."""
    letters = list(letters)
    refused = [reason for letter in letters if (reason := replay_refusal(letter))]
    if refused:
        raise ValueError("; ".join(refused))
    producer = local.access().producer(linger_ms=0)
    await producer.start()
    done = []
    try:
        for letter in letters:
            sent = await producer.send_and_wait(
                letter.origin_topic, letter.value, key=letter.key, headers=letter.replay_headers()
            )
            replayed_to = f"{sent.topic}:{sent.partition}:{sent.offset}"
            # The marker only after the replay is on the broker: a crash in between means replaying again,
            # which the kept event id makes harmless.
            if letter.stored_id is not None:
                await _mark_stored(local, letter, replayed_to)
            else:
                await producer.send_and_wait(
                    letter.topic,
                    None,
                    key=letter.key,
                    partition=letter.partition,
                    headers=[
                        (REPLAYED_MARKER, letter.id.encode()),
                        ("oms.replayed_to", replayed_to.encode()),
                        (REPLAYED_AT, now().isoformat().encode()),
                    ],
                )
            done.append({"id": letter.id, "replayed_to": replayed_to})
            if progress is not None:
                progress(letter)
    finally:
        await producer.stop()
    return done


def replay_refusal(letter: DeadLetter) -> str | None:
    """Why this dead letter may not be replayed, if it may not: the operator's replay publishes with rights
    no service has, so a record only goes back to a topic the service that set it aside reads."""
    if letter.unreadable:
        return f"{letter.id} cannot be replayed: the record could not be read at {letter.origin}"
    if letter.origin_topic not in {t.name for t in inputs(letter.service)}:
        return f"{letter.id} names {letter.origin_topic!r} as its origin, which is not an input of {letter.service!r}"
    return None


async def _mark_stored(local: LocalStack, letter: DeadLetter, replayed_to: str) -> None:
    conn = await connect(local.service_settings(letter.service))
    try:
        await conn.execute(
            f"UPDATE {STORED_TABLE} SET replayed_at = now(), replayed_to = $2 WHERE id = $1",
            letter.stored_id,
            replayed_to,
        )
    finally:
        await conn.close()
