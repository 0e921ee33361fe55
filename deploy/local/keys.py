"""The local stack's API keys (issued by `stack up` into <state>/api-keys.json) as an httpx authentication:
an order goes in with its channel's key, everything else (reading, cancelling, the operators' views) with
the operator key. For the demo, the tests and `oms` against the local stack; elsewhere pass a real key."""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path

import httpx

from deploy.local.processes import state_dir


def keys_file() -> Path:
    return state_dir() / "api-keys.json"


class DevelopmentKeys(httpx.Auth):
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or keys_file()
        if not self.path.exists():
            raise LookupError(f"no API key: set OMS_API_KEY, or start the local stack (make up) to get {self.path}")

    def _keys(self) -> dict[str, object]:
        keys: dict[str, object] = json.loads(self.path.read_text())
        return keys

    def token_for(self, request: httpx.Request) -> str:
        keys = self._keys()
        if request.method == "POST" and request.url.path == "/v1/orders":
            channel = json.loads(request.content or b"{}").get("channel")
            channels = keys["channels"]
            assert isinstance(channels, dict)
            if channel in channels:
                return str(channels[channel])
        return str(keys["operator"])

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token_for(request)}"
        yield request


def api_auth() -> httpx.Auth:
    """OMS_API_KEY when it is set (a real deployment), else the local stack's development keys."""
    token = os.environ.get("OMS_API_KEY")
    if token:
        return Bearer(token)
    return DevelopmentKeys()


class Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request
