"""A body read with `json_body` (validated from its bytes in one pass) is refused as FastAPI refuses a body parameter
of the same model: the same status, and the same errors by type and place, for every kind of bad body."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body, FastAPI, Request

from shared.backbone.http import answer_invalid_requests, json_body
from shared.contracts.events import SubmittedOrder
from tests.factories import order_document


def app() -> FastAPI:
    api = FastAPI()
    answer_invalid_requests(api)

    @api.post("/by-fastapi")
    async def by_fastapi(order: Annotated[SubmittedOrder, Body()]) -> dict[str, str]:
        return {"external_id": order.external_id}

    @api.post("/by-json-body")
    async def by_json_body(request: Request) -> dict[str, str]:
        order = await json_body(request, SubmittedOrder)
        return {"external_id": order.external_id}

    return api


VALID = order_document([("SKU-1", 2)])
JSON = {"content-type": "application/json"}
BODIES: dict[str, tuple[bytes, dict[str, str]]] = {
    "valid": (json.dumps(VALID).encode(), JSON),
    "valid, +json with a charset": (
        json.dumps(VALID).encode(),
        {"content-type": "application/vnd.x+json; charset=utf-8"},
    ),
    "empty": (b"", JSON),
    "no content type": (json.dumps(VALID).encode(), {}),
    "text/plain": (json.dumps(VALID).encode(), {"content-type": "text/plain"}),
    "an array": (b"[1, 2]", JSON),
    "a string": (b'"order"', JSON),
    "fields missing": (json.dumps({"channel": "webshop"}).encode(), JSON),
    "a field unknown": (json.dumps({**VALID, "colour": "red"}).encode(), JSON),
    "money as a number": (json.dumps({**VALID, "shipping_price": 4.95}).encode(), JSON),
    "a NUL character": (json.dumps({**VALID, "external_id": "a\u0000b"}).encode(), JSON),
    # JSON may escape half of a UTF-16 pair alone (Python's parser takes it); no UTF-8 text can hold it
    "a lone surrogate": (json.dumps({**VALID, "external_id": "a\ud800b"}).encode(), JSON),
    "a bad time": (json.dumps({**VALID, "placed_at": "yesterday"}).encode(), JSON),
    "not JSON": (b'{"a": ', JSON),
    "not UTF-8": (b'{"a": "\xe5\x80"}', JSON),
    "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, JSON),
    "NaN, which Python's parser takes": (json.dumps({**VALID, "shipping_price": float("nan")}).encode(), JSON),
    "a quantity of text": (json.dumps({**VALID, "lines": [{**VALID["lines"][0], "quantity": "two"}]}).encode(), JSON),
}


PARSER_ERRORS = ("not UTF-8", "nested too deeply")  # FastAPI: 400, there was an error parsing the body


def refusal(answer: httpx.Response) -> tuple[int, Any]:
    if answer.status_code != 422:
        return answer.status_code, answer.json()
    return 422, sorted((e["type"], tuple(e["loc"]), e["msg"]) for e in answer.json()["detail"])


@pytest.mark.parametrize("case", list(BODIES))
async def test_a_body_is_taken_or_refused_as_fastapi_would(case: str) -> None:
    body, headers = BODIES[case]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as http:
        ours = await http.post("/by-json-body", content=body, headers=headers)
        fastapis = await http.post("/by-fastapi", content=body, headers=headers)
    assert refusal(ours) == refusal(fastapis)
    assert ours.status_code == (200 if case.startswith("valid") else 400 if case in PARSER_ERRORS else 422)


async def test_a_refusal_shows_a_lone_surrogate_it_cannot_write_escaped() -> None:
    """The 422 repeats the input, which no UTF-8 answer can hold as it is: the answer was a 500."""
    body, headers = BODIES["a lone surrogate"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as http:
        answer = await http.post("/by-json-body", content=body, headers=headers)
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert (error["type"], error["loc"], error["input"]) == ("string_unicode", ["body", "external_id"], "a\\ud800b")
