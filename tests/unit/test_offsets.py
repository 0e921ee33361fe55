"""A broker that has just restarted answers an offset fetch with a group-level error and no partitions while it
loads the consumer offsets: that must be waited out, never read as "nothing committed" (which starts every
partition over from the beginning)."""

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import errors
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.commit import OffsetFetchRequest

from shared.backbone import offsets


@dataclass
class Response:
    error_code: int
    topics: list[Any] = field(default_factory=list)


class Coordinator:
    def __init__(self) -> None:
        self.forgotten = False

    def coordinator_dead(self) -> None:
        self.forgotten = True


@pytest.fixture
def broker_answers(monkeypatch):
    """GroupCoordinator._send_req answering with the given responses in turn, then guarded as the consumer does."""
    answers: list[Response] = []

    async def send(self, request):
        return answers.pop(0)

    monkeypatch.setattr(GroupCoordinator, "_send_req", send)
    monkeypatch.delattr(GroupCoordinator, offsets._GUARDED, raising=False)
    offsets.guard_offset_fetch()
    return answers


async def test_an_offset_fetch_answered_while_the_coordinator_loads_raises_a_retriable_error(broker_answers) -> None:
    # given a broker still loading the consumer offsets (it answers with no partitions)
    broker_answers.append(Response(error_code=errors.GroupLoadInProgressError.errno))
    # when the consumer asks for its committed offsets
    with pytest.raises(errors.GroupLoadInProgressError) as raised:
        await GroupCoordinator._send_req(Coordinator(), OffsetFetchRequest("oms-allocation", [("t", [0])]))
    # then it is told to wait and ask again, not that nothing was committed
    assert raised.value.retriable


async def test_an_offset_fetch_sent_to_a_broker_that_is_not_the_coordinator_forgets_the_coordinator(broker_answers):
    broker_answers.append(Response(error_code=errors.NotCoordinatorForGroupError.errno))
    coordinator = Coordinator()
    with pytest.raises(errors.NotCoordinatorForGroupError):
        await GroupCoordinator._send_req(coordinator, OffsetFetchRequest("oms-allocation", [("t", [0])]))
    assert coordinator.forgotten


async def test_answers_without_a_group_level_error_and_other_requests_pass_unchanged(broker_answers) -> None:
    fine = Response(error_code=0, topics=[("t", [(0, 47, "", 0)])])
    other = Response(error_code=errors.GroupLoadInProgressError.errno)  # not an offset fetch: left to aiokafka
    broker_answers.extend([fine, other])
    assert await GroupCoordinator._send_req(Coordinator(), OffsetFetchRequest("g", [("t", [0])])) is fine
    assert await GroupCoordinator._send_req(Coordinator(), object()) is other
