"""The local stack's API keys (issued by `stack up` into its keys file, LocalStack.keys_file) as an httpx
authentication: an order goes in with its channel's key, everything else (reading, cancelling, the operators'
views) with the operator key. For the demo, the tests and `oms` against the local stack; elsewhere `Bearer`
carries a real key."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path

import httpx


class DevelopmentKeys(httpx.Auth):
    def __init__(self, path: Path) -> None:
        self.path = path
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


class Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request
