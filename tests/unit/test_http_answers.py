"""What every service's HTTP API answers besides its own routes: a method the path does not take is refused with
every method it does take (an API client, or a fuzzer, reads `Allow`), and listings refuse unknown parameters."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query

from shared.backbone.http import Listing, answer_invalid_requests, answer_wrong_methods


def app() -> FastAPI:
    api = FastAPI()
    answer_invalid_requests(api)
    answer_wrong_methods(api)
    router = APIRouter()  # included, as the services include theirs: one route of the app holding several

    @router.get("/v1/orders/{order_id}/returns")
    async def returns_of_order(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id}

    @router.post("/v1/orders/{order_id}/returns")
    async def request_return(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id}

    @api.get("/v1/returns")
    async def listing(query: Annotated[Listing, Query()]) -> dict[str, Any]:
        return {"limit": query.limit}

    api.include_router(router)
    return api


async def answer(method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://oms") as client:
        return await client.request(method, path)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/orders/1/returns", "GET, POST"),
        ("DELETE", "/v1/orders/1/returns", "GET, POST"),
        ("POST", "/v1/returns", "GET"),
    ],
)
async def test_a_method_the_path_does_not_take_is_refused_with_every_method_it_takes(
    method: str, path: str, allowed: str
) -> None:
    refused = await answer(method, path)
    assert (refused.status_code, refused.headers["allow"], refused.json()) == (
        405,
        allowed,
        {"detail": "Method Not Allowed"},
    )


async def test_other_refusals_keep_their_own_answer() -> None:
    missing = await answer("GET", "/v1/nothing-here")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})


async def test_a_listing_refuses_an_unknown_parameter_in_fastapis_words() -> None:
    misspelt = await answer("GET", "/v1/returns?limt=5")
    assert misspelt.status_code == 422
    assert [(e["type"], e["loc"]) for e in misspelt.json()["detail"]] == [("extra_forbidden", ["query", "limt"])]
    assert (await answer("GET", "/v1/returns?limit=5")).json() == {"limit": 5}
