"""Gauges worked out from the database are refreshed every so often, and less often when a round gets slow, so
that refreshing never takes more than its share of the time however much history it reads; never while the order
path is behind."""

import asyncio
import logging
from types import SimpleNamespace

import pytest

from shared.backbone.peak import OrderPathWatch
from shared.backbone.periodic import SHARE, pause_after, refresh_every
from shared.backbone.settings import CommonSettings


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


async def test_a_round_is_put_off_while_the_order_path_is_behind_and_comes_once_it_caught_up(caplog) -> None:
    # given the order path behind: its backlog past the high mark, so what follows it waits
    caplog.set_level(logging.INFO, "shared.backbone.periodic")
    settings = CommonSettings(service="unit-refresh", peak_backlog_high=500, peak_backlog_low=100)
    watch = OrderPathWatch(settings)
    watch._update(600)
    rounds: list[int] = []

    async def refresh() -> None:
        rounds.append(watch.peak.since is None)
        raise asyncio.CancelledError  # one round is all this test needs

    # when the refresh loop starts, no round runs while the path is behind
    loop = asyncio.create_task(refresh_every("test gauges", 30, refresh, watch))
    for _ in range(5):
        await asyncio.sleep(0)
    assert rounds == [] and not loop.done()
    assert "test gauges put off while the order path is behind" in caplog.text

    # then the round comes once the backlog is down to the low mark, and not before
    watch._update(300)
    await asyncio.sleep(0)
    assert rounds == []
    watch._update(50)
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert rounds == [True]


async def test_a_round_that_costs_what_changed_keeps_its_interval_however_long_it_took(monkeypatch) -> None:
    clock = iter([0.0, 120.0, 150.0, 270.0])  # each round takes 120 s
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise asyncio.CancelledError

    async def refresh() -> None:
        pass

    monkeypatch.setattr("shared.backbone.periodic.time", SimpleNamespace(monotonic=lambda: next(clock)))
    monkeypatch.setattr("shared.backbone.periodic.asyncio.sleep", pause)
    with pytest.raises(asyncio.CancelledError):
        await refresh_every("test gauges", 30, refresh, share=None)
    assert pauses == [30, 30]
