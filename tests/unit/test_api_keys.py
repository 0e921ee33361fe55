"""API keys: only the digest of a key's secret is kept, a wrong, malformed, unknown or revoked key is refused,
each key is held to its rate, and a lookup is cached for a few seconds only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.backbone.auth import ApiKeys, Caller, new_key, secret_digest


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def keys_with(rows: dict[str, dict[str, Any]], clock: Clock) -> tuple[ApiKeys, list[str]]:
    lookups: list[str] = []

    async def fetch(key_id: str) -> dict[str, Any] | None:
        lookups.append(key_id)
        return rows.get(key_id)

    return ApiKeys(fetch, default_rate_per_second=50, clock=clock), lookups  # type: ignore[arg-type]


def row(secret: str, *, role: str = "channel", channel: str | None = "webshop", **extra: Any) -> dict[str, Any]:
    return {
        "role": role,
        "channel": channel,
        "secret_sha256": secret_digest(secret),
        "rate_per_second": None,
        "revoked": False,
        **extra,
    }


async def test_a_channel_key_authenticates_as_its_channel_and_acts_for_it_only() -> None:
    key = new_key()
    api_keys, _ = keys_with({key.key_id: row(key.secret)}, Clock())

    caller = await api_keys.authenticate(key.token)

    assert caller == Caller(key.key_id, "channel", "webshop", 50)
    assert caller.may_act_for("webshop") and not caller.may_act_for("marketplace")


async def test_an_operator_key_acts_for_every_channel() -> None:
    key = new_key()
    api_keys, _ = keys_with({key.key_id: row(key.secret, role="operator", channel=None)}, Clock())

    caller = await api_keys.authenticate(key.token)

    assert caller is not None and caller.may_act_for("webshop") and caller.may_act_for("pos")


async def test_wrong_malformed_unknown_and_revoked_keys_are_refused() -> None:
    key, revoked = new_key(), new_key()
    rows = {key.key_id: row(key.secret), revoked.key_id: row(revoked.secret, revoked=True)}
    api_keys, _ = keys_with(rows, Clock())
    wrong_secret = f"omsk_{key.key_id}_{new_key().secret}"

    for token in (wrong_secret, key.token[:-1], "Bearer x", "", new_key().token, revoked.token):
        assert await api_keys.authenticate(token) is None, token


async def test_a_key_is_held_to_its_rate_and_regains_it_over_time() -> None:
    key = new_key()
    clock = Clock()
    api_keys, _ = keys_with({key.key_id: row(key.secret, rate_per_second=3)}, clock)
    caller = await api_keys.authenticate(key.token)
    assert caller is not None and caller.rate_per_second == 3

    waits = [api_keys.wait_before(caller) for _ in range(5)]

    assert waits[:3] == [0, 0, 0] and all(w > 0 for w in waits[3:])
    clock.now += 1.0
    assert api_keys.wait_before(caller) == 0


async def test_lookups_are_cached_briefly_so_a_revocation_takes_effect_within_the_cache_time() -> None:
    key = new_key()
    rows = {key.key_id: row(key.secret)}
    clock = Clock()
    api_keys, lookups = keys_with(rows, clock)
    assert await api_keys.authenticate(key.token) is not None

    rows[key.key_id] = row(key.secret, revoked=True)
    clock.now += 1
    assert await api_keys.authenticate(key.token) is not None  # still cached
    clock.now += api_keys.cache_seconds

    assert await api_keys.authenticate(key.token) is None
    assert lookups == [key.key_id, key.key_id]
