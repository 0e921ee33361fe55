"""The planning renders messages outside any transaction: it reads them without a lock, renders them, and keeps
only those it then claims, in a short transaction; their deliveries reach this instance's dispatcher once that
commits."""

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from services.notifications.dispatcher import Handoff, Planning
from services.notifications.planning import Planned, Unrenderable, Waiting
from services.notifications.settings import NotificationSettings


class Database:
    """One connection's statements and transaction boundaries, in order, as `steps`. Reads of unplanned messages
    find `waiting`; a claim finds the keys in `claimable`; the deliveries' insert returns one row per delivery."""

    def __init__(self, waiting: list[dict[str, Any]], claimable: set[tuple[Any, ...]]) -> None:
        self.waiting = waiting
        self.claimable = claimable
        self.steps: list[str] = []
        self.in_transaction = False

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator["Database"]:
        yield self

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.steps.append("BEGIN")
        self.in_transaction = True
        yield
        self.in_transaction = False
        self.steps.append("COMMIT")

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if "planned_at IS NULL ORDER BY" in sql:
            self.steps.append("read unplanned")
            return self.waiting
        if "FOR UPDATE OF m SKIP LOCKED" in sql:
            self.steps.append("claim")
            return [
                {"order_id": o, "kind": k, "shipment_key": s}
                for o, k, s in zip(*args[:3], strict=True)
                if (o, k, s) in self.claimable
            ]
        if sql.startswith("WITH leased AS (INSERT INTO deliveries"):
            self.steps.append("lease deliveries")
            return [{"order_id": o, "kind": k, "shipment_key": s} for o, k, s in zip(*args[:3], strict=True)]
        raise AssertionError(sql)

    async def execute(self, sql: str, *args: Any) -> str:
        self.steps.append("keep rendered" if sql.startswith("UPDATE messages m SET planned_at") else "set aside")
        return ""


class RecordingPlanner:
    """Renders every message but the 'broken' kind, noting whether a transaction was open while it did."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def plan(self, waiting: Iterable[Waiting]) -> tuple[list[Planned], list[Unrenderable]]:
        self.db.steps.append("render in a transaction" if self.db.in_transaction else "render")
        messages = list(waiting)
        return (
            [
                Planned(m.key, m.facts, "subject", "text", "html", [("email", None)])
                for m in messages
                if m.key[1] != "broken"
            ],
            [Unrenderable(m.key, m.facts, "bug") for m in messages if m.key[1] == "broken"],
        )


def message(kind: str) -> dict[str, Any]:
    return {
        "order_id": uuid.uuid4(), "kind": kind, "shipment_key": "", "facts": {},
        "name": "Ada", "reference": "W-1", "sales_channel": "webshop",
    }  # fmt: skip


def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return row["order_id"], row["kind"], row["shipment_key"]


async def test_messages_are_rendered_before_the_transaction_that_claims_and_keeps_them() -> None:
    # given three messages waiting to be rendered, one of which another instance claims meanwhile, and one whose
    # template fails
    mine, theirs, broken = message("confirmed"), message("shipped"), message("broken")
    db = Database([mine, theirs, broken], claimable={key(mine), key(broken)})
    handoff = Handoff()
    planning = Planning(NotificationSettings(), db, RecordingPlanner(db), handoff)  # type: ignore[arg-type]
    # when the planning takes a step
    kept = await planning.step()
    # then the messages were read and rendered with no transaction open, and the transaction only claimed them,
    # set aside the one that cannot be rendered and kept the rest with their deliveries
    assert db.steps == [
        "read unplanned",
        "render",
        "BEGIN",
        "claim",
        "set aside",
        "keep rendered",
        "lease deliveries",
        "COMMIT",
    ]
    # and only the two it claimed count, the one another instance took is left to it
    assert kept == 2
    # and the dispatcher is handed the deliveries of the message it kept, once the transaction committed
    handed, _ = handoff.take()
    assert [(row["order_id"], row["kind"], row["shipment_key"]) for row in handed] == [key(mine)]
    assert handoff.wake.is_set()


async def test_nothing_waiting_opens_no_transaction() -> None:
    db = Database([], claimable=set())
    planning = Planning(NotificationSettings(), db, RecordingPlanner(db), Handoff())  # type: ignore[arg-type]
    assert await planning.step() == 0
    assert db.steps == ["read unplanned"]
