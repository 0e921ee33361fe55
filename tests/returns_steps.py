"""Steps the return scenarios share: a delivered order, the returns API as a channel or an operator, a return
parcel reported as a warehouse does, and what the services' tables say about it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from deploy.local.keys import Bearer
from services.returns.answers import RefundsOfOrder, ReturnAnswer, ReturnView
from shared.contracts import topics
from tests.factories import order_document
from tests.local import LOCAL, client
from tests.scenario import TopicReader, as_documented, new_skus, order_view, seed, wait_status
from tests.waiting import eventually

# A refund the provider has answered for good.
SETTLED = {"succeeded", "abandoned"}


def channel_key(channel: str = "webshop") -> Bearer:
    """The local stack's development key of a channel."""
    return Bearer(json.loads(LOCAL.keys_file.read_text())["channels"][channel])


def operator_key() -> Bearer:
    return Bearer(json.loads(LOCAL.keys_file.read_text())["operator"])


@asynccontextmanager
async def returns_api(auth: httpx.Auth | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The returns service's API, as the webshop channel unless told otherwise."""
    async with httpx.AsyncClient(base_url=LOCAL.http_url("returns"), timeout=30, auth=auth or channel_key()) as api:
        yield api


async def delivered_order(
    http: httpx.AsyncClient, db: asyncpg.Pool, lines: list[tuple[str, int]], **overrides: Any
) -> str:
    """An order posted, delivered by the simulator, and known as delivered to returns."""
    await client.wait_caught_up("oms-returns", [topics.CATALOG_PRODUCTS.name])
    response = await http.post("/v1/orders", json=order_document(lines, **overrides))
    assert response.status_code == 202, response.text
    order_id: str = response.json()["order_id"]
    await known_delivered(http, db, order_id)
    return order_id


async def known_delivered(http: httpx.AsyncClient, db: asyncpg.Pool, order_id: str) -> None:
    """The order is delivered, and returns knows it."""
    await wait_status(http, order_id, {"delivered"})
    await eventually(
        lambda: db.fetchval("SELECT count(*) FROM returns.deliveries WHERE order_id = $1", uuid.UUID(order_id)),
        lambda n: n == 1,
    )


def return_line(sku: str, quantity: int = 1, reason: str = "size.too_small") -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "reason": reason}


async def ask_return(
    order_id: str, lines: list[dict[str, Any]], auth: httpx.Auth | None = None, **body: Any
) -> httpx.Response:
    async with returns_api(auth) as api:
        response = await api.post(f"/v1/orders/{order_id}/returns", json={"lines": lines, **body})
    if response.status_code in (200, 201, 202) or (response.status_code == 409 and "return_id" in response.json()):
        as_documented(response, ReturnAnswer)
    return response


async def return_view(return_id: str) -> dict[str, Any]:
    async with returns_api(operator_key()) as api:
        response = await api.get(f"/v1/returns/{return_id}")
    response.raise_for_status()
    return as_documented(response, ReturnView)


async def order_refunds(order_id: str) -> list[dict[str, Any]]:
    """Every refund returns holds for the order (of its returns and of its changes), as an operator sees them."""
    async with returns_api(operator_key()) as api:
        response = await api.get(f"/v1/orders/{order_id}/refunds")
    response.raise_for_status()
    return as_documented(response, RefundsOfOrder)["refunds"]  # type: ignore[no-any-return]


async def settled_refunds(order_id: str) -> list[dict[str, Any]]:
    """The order's refunds once there is one and the provider has answered each for good (a change's refund follows
    it through capture, fulfillment, allocation, capture again, returns and the provider: a longer deadline). Returns
    reads orders off the order's path, so it may not know a just-placed order yet: its 404 means none so far."""

    async def so_far() -> list[dict[str, Any]]:
        try:
            return await order_refunds(order_id)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return []
            raise

    found: list[dict[str, Any]] = await eventually(
        so_far, lambda r: bool(r) and all(f["status"] in SETTLED for f in r), timeout=60
    )
    return found


async def answers_for(results: TopicReader, key: str) -> list[dict[str, Any]]:
    """The provider's answers (on its results topic) to the requests of one idempotency key."""
    return [body for body in map(json.loads, [r.value for r in await results.read()]) if body["idempotency_key"] == key]


async def wait_return(return_id: str, statuses: set[str], timeout: float = 45) -> dict[str, Any]:
    view: dict[str, Any] = await eventually(
        lambda: return_view(return_id), lambda v: v["status"] in statuses, timeout=timeout
    )
    return view


async def parcel_received(
    warehouse: str, rma: str, lines: list[tuple[str, int, str]], receipt: str | None = None
) -> str:
    """The warehouse reports a return parcel opened: (sku, quantity, disposition) per line; returns the receipt."""
    receipt = receipt or f"RR-{uuid.uuid4().hex[:10]}"
    report = {
        "kind": "return_received",
        "warehouse_id": warehouse,
        "rma": rma,
        "receipt": receipt,
        "lines": [{"sku": sku, "quantity": n, "disposition": d} for sku, n, d in lines],
        "occurred_at": "2026-12-01T10:00:00+00:00",
    }
    await client.publish(topics.WAREHOUSE_EVENTS.name, [(warehouse, report)])
    return receipt


async def on_hand(db: asyncpg.Pool, warehouse: str, sku: str) -> tuple[int, int]:
    row = await db.fetchrow("SELECT on_hand, reserved FROM allocation.stock WHERE warehouse_id = $1 AND sku = $2",
                            warehouse, sku)  # fmt: skip
    return (row["on_hand"], row["reserved"]) if row else (0, 0)


@dataclass(frozen=True)
class Exchange:
    order_id: str
    return_id: str
    rma: str
    new_sku: str


async def exchange_asked(http: httpx.AsyncClient, db: asyncpg.Pool, new_price: str, **overrides: Any) -> Exchange:
    """A delivered size M bought at 10.00, which the customer exchanges for a size L at `new_price` (both in stock);
    the simulator sends the parcel back."""
    medium, large = new_skus(2, prefix="EXC")
    await seed([("ams", medium, 1), ("ams", large, 1)])
    order_id = await delivered_order(http, db, [(medium, 1)], **overrides)
    exchange_for = [{"sku": large, "quantity": 1, "unit_price": new_price}]
    response = await ask_return(order_id, [return_line(medium)], resolution="exchange", exchange_for=exchange_for)
    assert response.status_code == 201, response.text
    return Exchange(order_id, response.json()["return_id"], response.json()["rma"], large)


async def exchange_ordered(http: httpx.AsyncClient, order_id: str) -> tuple[str, str]:
    """The exchange order capture opened for an order: its id, and the detail of the original's step."""
    original = await eventually(
        lambda: order_view(http, order_id), lambda v: "exchange_ordered" in [s["status"] for s in v["timeline"]]
    )
    detail: str = next(s["detail"] for s in original["timeline"] if s["status"] == "exchange_ordered")
    return detail.split()[2], detail
