"""The planning renders messages outside any transaction: it reads them without a lock, renders them, and keeps
those still not rendered, with their deliveries, in one statement; the deliveries reach this instance's dispatcher
once that has committed."""

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from services.notifications.dispatcher import Handoff, Planning
from services.notifications.planning import Planned, Unrenderable, Waiting, key_of
from services.notifications.settings import NotificationSettings


class OneConnection:
    """A pool of one connection, noting its statements in order as `steps`, with every transaction opened."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator["OneConnection"]:
        yield self

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.steps.append("BEGIN")
        yield
        self.steps.append("COMMIT")


class Database(OneConnection):
    """Reads of unplanned messages find `waiting`; keeping renderings keeps those in `claimable` (another instance
    holds the rest) and returns one row per delivery of theirs."""

    def __init__(self, waiting: list[dict[str, Any]], claimable: set[tuple[Any, ...]]) -> None:
        super().__init__()
        self.waiting = waiting
        self.claimable = claimable

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if "planned_at IS NULL ORDER BY" in sql:
            self.steps.append("read unplanned")
            return self.waiting
        if sql.lstrip().startswith("WITH claimed AS MATERIALIZED"):
            self.steps.append("keep rendered")
            kept = {key for key in zip(*args[:3], strict=True) if key in self.claimable}
            return [
                {"order_id": o, "kind": k, "shipment_key": s}
                for o, k, s in zip(*args[6:9], strict=True)
                if (o, k, s) in kept
            ]
        raise AssertionError(sql)

    async def execute(self, sql: str, *args: Any) -> str:
        assert sql.startswith("UPDATE messages m SET planned_at = now(), render_error"), sql
        self.steps.append("set aside")
        return ""


class RecordingPlanner:
    """Renders every message but the 'broken' kind (an email and a webhook delivery each), noting the step."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def plan(self, waiting: Iterable[Waiting]) -> tuple[list[Planned], list[Unrenderable]]:
        self.db.steps.append("render")
        messages = list(waiting)
        deliveries: list[tuple[str, bytes | None]] = [("email", None), ("crm", b"{}")]
        return (
            [Planned(m.key, m.facts, "subject", "text", "html", deliveries) for m in messages if m.key[1] != "broken"],
            [Unrenderable(m.key, m.facts, "bug") for m in messages if m.key[1] == "broken"],
        )


def message(kind: str) -> dict[str, Any]:
    return {
        "order_id": uuid.uuid4(), "kind": kind, "shipment_key": "", "facts": {},
        "name": "Ada", "reference": "W-1", "sales_channel": "webshop",
    }  # fmt: skip


async def test_messages_are_rendered_and_kept_with_no_transaction_left_open_between_statements() -> None:
    # given three messages waiting to be rendered: one another instance holds meanwhile, one whose template fails
    mine, theirs, broken = message("confirmed"), message("shipped"), message("broken")
    db = Database([mine, theirs, broken], claimable={key_of(mine)})
    handoff = Handoff()
    planning = Planning(NotificationSettings(), db, RecordingPlanner(db), handoff)  # type: ignore[arg-type]
    # when the planning takes a step
    kept = await planning.step()
    # then the messages were read and rendered, the one that cannot be rendered set aside and the rest kept, each
    # in a statement of its own, with no transaction opened around them
    assert db.steps == ["read unplanned", "render", "set aside", "keep rendered"]
    # and only the message it kept counts, the one another instance holds is left to it
    assert kept == 1
    # and the dispatcher is handed that message's deliveries
    handed, _ = handoff.take()
    assert sorted(key_of(row) for row in handed) == [key_of(mine), key_of(mine)]
    assert handoff.wake.is_set()


async def test_nothing_waiting_writes_nothing() -> None:
    db = Database([], claimable=set())
    planning = Planning(NotificationSettings(), db, RecordingPlanner(db), Handoff())  # type: ignore[arg-type]
    assert await planning.step() == 0
    assert db.steps == ["read unplanned"]
