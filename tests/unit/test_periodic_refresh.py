"""Gauges worked out from the database are refreshed every so often, and less often when a round gets slow, so
that refreshing never takes more than its share of the time however much history it reads."""

import asyncio

import pytest

from shared.backbone.periodic import SHARE, pause_after, refresh_every


def test_a_quick_round_waits_the_set_interval() -> None:
    assert pause_after(0.2, 30) == 30


@pytest.mark.parametrize("took", [2.0, 15.0, 120.0])
def test_a_slow_round_is_followed_by_a_pause_that_keeps_refreshing_to_its_share(took) -> None:
    pause = pause_after(took, 30)
    assert pause > 30
    assert took / (took + pause) == pytest.approx(SHARE)


async def test_a_failing_round_is_logged_and_the_next_one_comes(monkeypatch, caplog) -> None:
    rounds: list[int] = []
    pauses: list[float] = []

    async def refresh() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ConnectionError("database away")

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise asyncio.CancelledError

    monkeypatch.setattr("shared.backbone.periodic.asyncio.sleep", pause)
    with pytest.raises(asyncio.CancelledError):
        await refresh_every("test gauges", 30, refresh)
    assert rounds == [0, 1] and pauses == [30, 30]
    assert "test gauges not refreshed (ConnectionError)" in caplog.text
