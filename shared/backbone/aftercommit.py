"""Effects that must happen only if a database transaction commits, such as metric increments.

A handler runs inside a transaction that may roll back (a failing record in its batch) or be retried (a
deadlock, the database restarting); counting inside it would count work that never happened, or count it
twice. `transaction(conn)` opens the transaction and collects what `after_commit` registers in it; the
actions run once it has committed and are dropped when it fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar

from shared.backbone.db import Conn

Action = Callable[[], None]
_pending: ContextVar[list[Action] | None] = ContextVar("oms_after_commit", default=None)


@contextlib.asynccontextmanager
async def transaction(conn: Conn) -> AsyncIterator[None]:
    outer = _pending.get()
    actions: list[Action] = []
    token = _pending.set(actions)
    try:
        async with conn.transaction():
            yield
    finally:
        _pending.reset(token)
    # Reached only when the transaction committed. A nested one is a savepoint: its actions wait for the outer.
    if outer is not None:
        outer.extend(actions)
        return
    for action in actions:
        action()


def after_commit(action: Action) -> None:
    """Run `action` when the enclosing `transaction` commits.

    Outside such a transaction there is nothing to wait for (a unit test calling a handler directly, or
    work that is not transactional), so the action runs at once.
    """
    pending = _pending.get()
    if pending is None:
        action()
    else:
        pending.append(action)
