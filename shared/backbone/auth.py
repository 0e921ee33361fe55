"""Who is calling the HTTP APIs: API keys of channels (submit, read and cancel their own channel's orders) and
of operators (read and cancel any order, read the services' views), with a rate limit per key.

A key reads `omsk_<key id>_<secret>`. Only the SHA-256 of the secret is stored (the secret is 256 random
bits, so a slow hash adds nothing), in `auth.api_keys`: a schema the administrator owns and the services
may only read (shared/backbone/auth.sql). Keys are issued and revoked with `oms keys`. Lookups are cached for a few
seconds per key id, so a revocation takes effect within `cache_seconds` on every instance.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import asyncpg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.backbone.db import Conn

Role = Literal["channel", "operator"]
KEY_PATTERN = re.compile(r"^omsk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
SCHEMA_FILE = Path(__file__).resolve().parent / "auth.sql"


@dataclass(frozen=True)
class Caller:
    """An authenticated key: an operator, or a channel adapter acting for `channel`."""

    key_id: str
    role: Role
    channel: str | None
    rate_per_second: float

    def may_act_for(self, channel: str) -> bool:
        return self.role == "operator" or self.channel == channel


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"omsk_{self.key_id}_{self.secret}"


def new_key() -> IssuedKey:
    return IssuedKey(secrets.token_hex(8), secrets.token_urlsafe(32))


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class _Stored:
    role: Role
    channel: str | None
    digest: bytes
    rate_per_second: float | None
    revoked: bool


@dataclass
class _Bucket:
    """Token bucket: `rate` tokens a second, up to one second's worth banked."""

    tokens: float
    updated: float

    def take(self, rate: float, now: float) -> float:
        """0 when a request may pass, else the seconds until it may."""
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


@dataclass
class ApiKeys:
    """Authenticates bearer keys against `auth.api_keys` and applies each key's rate limit (per instance)."""

    fetch: Callable[[str], Awaitable[asyncpg.Record | None]]
    default_rate_per_second: float
    cache_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, _Stored | None]] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @classmethod
    def over(cls, pool: Callable[[], asyncpg.Pool], default_rate_per_second: float) -> ApiKeys:
        async def fetch(key_id: str) -> asyncpg.Record | None:
            return await pool().fetchrow(
                "SELECT role, channel, secret_sha256, rate_per_second, revoked_at IS NOT NULL AS revoked"
                " FROM auth.api_keys WHERE key_id = $1",
                key_id,
            )

        return cls(fetch, default_rate_per_second)

    async def authenticate(self, token: str) -> Caller | None:
        found = KEY_PATTERN.match(token)
        if found is None:
            return None
        key_id, secret = found.groups()
        stored = await self._stored(key_id)
        # Compare digests in constant time, and compute one even for unknown ids so timing tells nothing.
        expected = stored.digest if stored is not None else b"\0" * 32
        if not hmac.compare_digest(secret_digest(secret), expected) or stored is None or stored.revoked:
            return None
        return Caller(key_id, stored.role, stored.channel, stored.rate_per_second or self.default_rate_per_second)

    def wait_before(self, caller: Caller) -> float:
        """Seconds the caller must wait before this request may pass (0: it passes now)."""
        now = self.clock()
        bucket = self._buckets.setdefault(caller.key_id, _Bucket(caller.rate_per_second, now))
        return bucket.take(caller.rate_per_second, now)

    async def _stored(self, key_id: str) -> _Stored | None:
        now = self.clock()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        row = await self.fetch(key_id)
        stored = None
        if row is not None:
            digest = bytes(row["secret_sha256"])
            stored = _Stored(row["role"], row["channel"], digest, row["rate_per_second"], row["revoked"])
        if len(self._cache) > 10_000:  # random key ids must not grow the cache without bound
            self._cache.clear()
        self._cache[key_id] = (now, stored)
        return stored


def unauthenticated(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer omsk_<key id>_<secret>`")


async def authenticated_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Caller:
    """A FastAPI dependency: the authenticated caller of the request (the app's `state.api_keys` checks the
    key), or 401, or 429 when the key is over its rate."""
    if credentials is None:
        raise unauthenticated("an API key is required: Authorization: Bearer <key>")
    token = credentials.credentials
    api_keys: ApiKeys = request.app.state.api_keys
    caller = await api_keys.authenticate(token.strip())
    if caller is None:
        raise unauthenticated("the API key is unknown, malformed or revoked")
    wait = api_keys.wait_before(caller)
    if wait > 0:
        raise HTTPException(
            429, "rate limit of this API key exceeded", headers={"Retry-After": str(max(1, round(wait)))}
        )
    return caller


Authenticated = Annotated[Caller, Depends(authenticated_caller)]


async def operator(caller: Authenticated) -> Caller:
    """A FastAPI dependency for operators' views: 401 without a valid key, 403 for a channel's key."""
    if caller.role != "operator":
        raise forbidden("this view is for operators' keys only")
    return caller


OPERATORS_ONLY = Depends(operator)


# ---- issuing and revoking (the administrator's connection: services cannot write auth.api_keys) ----


async def issue(
    conn: Conn, role: Role, channel: str | None, label: str = "", rate_per_second: int | None = None
) -> IssuedKey:
    """A new key; its token is shown once, only its digest is kept."""
    key = new_key()
    await conn.execute(
        "INSERT INTO auth.api_keys (key_id, role, channel, secret_sha256, label, rate_per_second)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        key.key_id,
        role,
        channel,
        secret_digest(key.secret),
        label,
        rate_per_second,
    )
    return key


async def revoke(conn: Conn, key_id: str) -> bool:
    """False when there is no such key or it was revoked already."""
    return bool(
        await conn.fetchval(
            "UPDATE auth.api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL RETURNING true",
            key_id,
        )
    )


async def listing(conn: Conn) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT key_id, role, channel, label, rate_per_second, created_at, revoked_at FROM auth.api_keys"
        " ORDER BY created_at, key_id"
    )
    return [dict(r) for r in rows]


async def active(conn: Conn, key_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM auth.api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id))
