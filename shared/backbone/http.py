"""HTTP helpers shared by the services' APIs."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.backbone import logs

CORRELATION_HEADER = b"x-correlation-id"


class BodySizeLimit:
    """Refuses request bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await reply(send, 413, {"detail": f"request body over {self.limit} bytes"})
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await reply(send, 413, {"detail": f"request body over {self.limit} bytes"})


class BodyTooLarge(Exception):
    pass


async def reply(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """A JSON answer from ASGI middleware, before (or instead of) the application."""
    data = json.dumps(body).encode()
    fields = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    fields += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": data})


class CorrelationId:
    """Binds a correlation id to the log context of each request: the caller's X-Correlation-Id when it is a
    UUID (anything else could smuggle data into the logs), a new one otherwise; echoed in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = _uuid_or_none(dict(scope["headers"]).get(CORRELATION_HEADER)) or uuid.uuid4()

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (CORRELATION_HEADER, str(correlation_id).encode())]
            await send(message)

        with logs.bound(correlation_id=correlation_id):
            await self.app(scope, receive, send_with_header)


def _uuid_or_none(value: bytes | None) -> uuid.UUID | None:
    if value is None or len(value) > 64:
        return None
    try:
        return uuid.UUID(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
