"""The dispatcher records what its hand-offs did in one statement, with no transaction around it; a database that is
away is waited for while the lease lasts; the deliveries are counted by outcome once recorded, and never when the
record failed."""

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifications.channels import Outcome
from services.notifications.dispatcher import UNCONFIGURED, Dispatcher, Handoff
from services.notifications.metrics import DELIVERIES, NOTIFICATIONS_SENT
from services.notifications.settings import NotificationSettings
from tests.unit.test_notification_planning import OneConnection

AT = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)


class Database(OneConnection):
    """The first `away` tries fail as a database that cannot be reached does; `refuses`: every one as a statement the
    server does not take."""

    def __init__(self, away: int = 0, refuses: bool = False) -> None:
        super().__init__()
        self.away = away
        self.refuses = refuses
        self.recorded: list[tuple[Any, ...]] = []

    async def execute(self, sql: str, *args: Any) -> str:
        assert sql.startswith("WITH a AS (SELECT * FROM unnest("), sql
        assert "INSERT INTO delivery_attempts" in sql and "UPDATE deliveries d SET" in sql
        self.steps.append("record")
        if self.away:
            self.away -= 1
            raise ConnectionRefusedError("the database is away")
        if self.refuses:
            raise ValueError("not a statement this server takes")
        self.recorded = list(zip(*args, strict=True))
        return "UPDATE 4"


def row(channel: str, kind: str, attempts: int = 0) -> dict[str, Any]:
    return {"order_id": uuid.uuid4(), "kind": kind, "shipment_key": "", "channel": channel, "attempts": attempts}


OUTCOMES = [
    (row("email", "confirmation"), Outcome(None, AT, 12)),
    (row("webhook:crm", "confirmation"), Outcome("503 from the endpoint", AT, 30)),
    (row("email", "shipped"), Outcome("550 mailbox unavailable", AT, 8, undeliverable=True)),
    (row("webhook:gone", "shipped", attempts=2), Outcome(UNCONFIGURED, AT, 0)),
]
RESULTS = [("email", "confirmation", "sent"), ("webhook:crm", "confirmation", "retry")]
RESULTS += [("email", "shipped", "undeliverable"), ("webhook:gone", "shipped", "gave_up")]


def counted() -> list[float]:
    return [DELIVERIES.labels(*labels)._value.get() for labels in RESULTS] + [
        NOTIFICATIONS_SENT.labels("confirmation")._value.get()
    ]


def dispatcher(db: Database) -> Dispatcher:
    settings = NotificationSettings(environment="test", retry_base_seconds=2.0)
    return Dispatcher(settings, db, None, Handoff())  # type: ignore[arg-type]


async def test_attempts_are_recorded_in_one_statement_and_counted_once_recorded(monkeypatch) -> None:
    monkeypatch.setattr("services.notifications.dispatcher.backoff", lambda attempt: 0.0)
    db = Database(away=2)
    before = counted()

    await dispatcher(db)._record_all(OUTCOMES, math.inf)  # type: ignore[arg-type]

    assert db.steps == ["record", "record", "record"]  # two tries while away, then once; never a transaction
    assert [
        (channel, attempt, error, retry_in is not None, undeliverable)
        for _, _, _, channel, attempt, _, error, _, retry_in, undeliverable in db.recorded
    ] == [
        ("email", 1, None, False, False),
        ("webhook:crm", 1, "503 from the endpoint", True, False),
        ("email", 1, "550 mailbox unavailable", False, True),
        ("webhook:gone", 3, UNCONFIGURED, False, False),
    ]
    assert [after - was for after, was in zip(counted(), before, strict=True)] == [1, 1, 1, 1, 1]


async def test_nothing_is_counted_when_the_record_fails() -> None:
    db = Database(refuses=True)
    before = counted()

    with pytest.raises(ValueError):
        await dispatcher(db)._record_all(OUTCOMES, math.inf)  # type: ignore[arg-type]

    assert db.steps == ["record"]
    assert counted() == before
