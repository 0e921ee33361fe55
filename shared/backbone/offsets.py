"""Committed offsets read back only when the broker really has them.

aiokafka 0.14 ignores the group-level error of an OffsetFetch response (versions 2 and up): a broker that has just
restarted answers NOT_COORDINATOR, then COORDINATOR_LOAD_IN_PROGRESS, with no partitions while it loads the
consumer offsets, and aiokafka reads that as "nothing committed". A consumer assigned partitions at that moment
starts them over from the beginning (auto_offset_reset), and `committed()` says None: every record is read again
(the inbox skips them; poison records are dead-lettered again). Found by the chaos run after a broker `kill -9`.

`guard_offset_fetch` makes aiokafka raise that error instead, so its own retry waits for the coordinator. To drop
once aiokafka checks the group-level error itself.
"""

from __future__ import annotations

from typing import Any

from aiokafka import errors
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.commit import OffsetFetchRequest

_GUARDED = "_oms_offset_fetch_guarded"


async def checked(coordinator: Any, response: Any) -> Any:
    """The response, or the group-level error it carries raised (the coordinator forgotten when it moved)."""
    code = getattr(response, "error_code", 0)
    if not code:
        return response
    error = errors.for_code(code)
    if error is errors.NotCoordinatorForGroupError:
        coordinator.coordinator_dead()
    raise error()


def guard_offset_fetch() -> None:
    """Apply once per process; later calls do nothing."""
    if getattr(GroupCoordinator, _GUARDED, False):
        return
    send = GroupCoordinator._send_req

    async def send_checked(self: GroupCoordinator, request: Any) -> Any:
        response = await send(self, request)
        return await checked(self, response) if isinstance(request, OffsetFetchRequest) else response

    GroupCoordinator._send_req = send_checked
    setattr(GroupCoordinator, _GUARDED, True)
