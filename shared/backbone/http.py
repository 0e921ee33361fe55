"""HTTP helpers shared by the services' APIs."""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.backbone import logs

CORRELATION_HEADER = b"x-correlation-id"
Model = TypeVar("Model", bound=BaseModel)


class StrictQuery(BaseModel):
    """Query parameters read as one model: an unknown one is refused (422) rather than ignored, so that a misspelt
    filter cannot quietly answer about everything, and the OpenAPI document says so (no other properties)."""

    model_config = ConfigDict(extra="forbid")


class Listing(StrictQuery):
    """An operator's list: at most `limit` rows."""

    limit: int = Field(default=100, ge=1, le=1000)


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


def is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, as FastAPI reads a body as JSON (a missing type is not)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_body(request: Request, model: type[Model]) -> Model:
    """The request's body as `model`, validated from its bytes in one pass (no dict of it built first). A body that
    fails is read again as FastAPI reads a body parameter, so that it is refused in FastAPI's words: 422 with each
    error under `body` (missing, not JSON, or not the model)."""
    raw = await request.body()
    json_typed = is_json(request.headers.get("content-type"))
    if raw and json_typed:
        with contextlib.suppress(ValidationError):
            return model.model_validate_json(raw)
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        body = json.loads(raw) if json_typed else raw
    except json.JSONDecodeError as exc:
        where = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**where, "ctx": {"error": exc.msg}}]) from None
    except (ValueError, RecursionError):  # not UTF-8 (nor UTF-16 or -32), or nested too deeply
        raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return model.model_validate(body, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in errors]) from None


def answer_invalid_requests(app: FastAPI) -> None:
    """422 with the errors, as FastAPI answers, for every request that fails validation, including one whose body
    holds NaN or Infinity, or half of a UTF-16 pair alone: Python's JSON parser takes them (JSON has neither number,
    and no UTF-8 text holds such a half), and FastAPI's own answer, which repeats the input, could not be written and
    became a 500."""

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = jsonable_encoder(exc.errors(), custom_encoder={float: _finite_or_named, str: _writable})
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def answer_wrong_methods(app: FastAPI) -> None:
    """405 with every method the path takes in `Allow`: Starlette names only those of the first route of the path,
    and a path with a route per method (GET and POST) would tell a client that only one of them exists."""

    async def wrong_method(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code != 405:
            return await http_exception_handler(request, exc)
        # Asked of the routes themselves, method by method: an included router is one route holding many.
        allowed = [
            method
            for method in METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.routes)
        ]
        return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": ", ".join(allowed)})

    app.add_exception_handler(StarletteHTTPException, wrong_method)


def _finite_or_named(number: float) -> float | str:
    return number if math.isfinite(number) else str(number)


def _writable(text: str) -> str:
    """The text with what UTF-8 cannot hold (half of a UTF-16 pair, which JSON may escape alone) shown escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
