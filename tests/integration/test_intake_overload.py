"""An intake past its queue's limit, over the API and as Shopify's webhook: each order it cannot take in time is
answered at once with 503 and Retry-After and is not taken, every order it answered 202 is (a webhook's delivery
recorded with it), and a refused order sent again is taken."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from deploy.local import processes
from deploy.local.keys import DevelopmentKeys
from tests.factories import order_document
from tests.integration.test_shopify_intake import URL as SHOPIFY_URL
from tests.integration.test_shopify_intake import headers as shopify_headers
from tests.integration.test_shopify_intake import shopify_order
from tests.local import LOCAL
from tests.scenario import new_skus, seed

ORDERS = 300
ANSWER_SECONDS = 60


def busy_capture() -> processes.Process:
    """A capture instance of its own whose queue is full as soon as one order waits: it writes one order per round."""
    return processes.Process(
        LOCAL,
        "capture-busy",
        "services.capture",
        LOCAL.ports.http["capture"] + 50,
        env={"OMS_INSTANCE": "busy", "OMS_INTAKE_WAIT_LIMIT_SECONDS": "0.000001", "OMS_INTAKE_ROUND_SIZE": "1"},
    )


Request = tuple[str, dict[str, str], bytes]  # path, headers, body
Answer = tuple[int, dict[str, str], Any]


def api_request(document: dict[str, Any], port: int) -> Request:
    body = json.dumps(document).encode()
    token = DevelopmentKeys(LOCAL.keys_file).token_for(
        httpx.Request("POST", f"http://{LOCAL.host}:{port}/v1/orders", content=body)
    )
    return "/v1/orders", {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, body


async def post_at_once(port: int, requests: list[Request]) -> list[Answer]:
    """Each request on a connection of its own, every request written only once all connections are open, so that
    they reach the service together (an HTTP client library would send them one after the other)."""
    connections = [await asyncio.open_connection(LOCAL.host, port) for _ in requests]
    for (_, writer), (path, fields, body) in zip(connections, requests, strict=True):
        head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {LOCAL.host}\r\n{head}Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Answer:
        # To the end (the service closes the connection after its answer), within a deadline: a lost answer fails.
        raw = await asyncio.wait_for(reader.read(), ANSWER_SECONDS)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *fields = head.decode().split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
        return int(status_line.split()[1]), headers, json.loads(body)

    return await asyncio.gather(*(answer(reader, writer) for reader, writer in connections))


async def at_once_to_a_busy_instance(sku: str, requests: Callable[[int], list[Request]]) -> list[Answer]:
    """The requests (made for the instance's port) sent together to a busy capture instance, once an order of `sku`
    has been written there, so that it knows how long a round takes."""
    instance = busy_capture()
    instance.start()
    try:
        instance.wait_ready()
        port = instance.http_port or 0
        ((status, _, _),) = await post_at_once(port, [api_request(order_document([(sku, 1)]), port)])
        assert status == 202
        return await post_at_once(port, requests(port))
    finally:
        instance.stop()


def refused_at_once_or_taken(answers: list[Answer]) -> None:
    """Each answer a 202 or a 503 with Retry-After and the reason; some of each."""
    assert {status for status, _, _ in answers} == {202, 503}, answers[:3]
    for status, headers, body in answers:
        if status == 503:
            assert int(headers["retry-after"]) >= 1
            assert "busy" in body["detail"]


async def test_orders_past_the_queue_limit_get_503_with_retry_after_and_only_the_accepted_are_taken(
    db, pipeline, http
) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 1000)])
    documents = [order_document([(sku, 1)]) for _ in range(ORDERS)]
    # when the orders arrive together
    answers = await at_once_to_a_busy_instance(sku, lambda port: [api_request(d, port) for d in documents])

    # then each is either taken (202) or refused at once (503 with Retry-After and the reason)
    refused_at_once_or_taken(answers)
    refused = [d for d, (status, _, _) in zip(documents, answers, strict=True) if status == 503]
    # and exactly the orders answered 202 were taken
    taken = {d["external_id"] for d, (status, _, _) in zip(documents, answers, strict=True) if status == 202}
    rows = await db.fetch(
        "SELECT external_id FROM capture.orders WHERE channel = 'webshop' AND external_id = ANY($1::text[])",
        [d["external_id"] for d in documents],
    )
    assert {row["external_id"] for row in rows} == taken
    # and a refused order sent again is taken
    again = await http.post("/v1/orders", json=refused[0])
    assert again.status_code == 202, again.text
    assert again.json()["duplicate"] is False


async def test_shopify_webhooks_past_the_queue_limit_get_503_and_only_the_accepted_are_taken_with_their_delivery(
    db, pipeline, http
) -> None:
    shirt, mug = new_skus(2, prefix="SHOP")
    await seed([("ams", shirt, 1000), ("ams", mug, 1000)])
    deliveries = []
    for _ in range(ORDERS):
        external_id, body = shopify_order([shirt, mug])
        raw = json.dumps(body).encode()
        deliveries.append((external_id, (SHOPIFY_URL, shopify_headers(raw), raw)))
    # when Shopify's deliveries arrive together
    answers = await at_once_to_a_busy_instance(shirt, lambda _: [request for _, request in deliveries])

    # then each is either taken (202) or refused at once (503 with Retry-After and the reason)
    refused_at_once_or_taken(answers)
    # and exactly the orders answered 202 were taken, each with the delivery it came in
    taken = {
        external_id: (request[1]["X-Shopify-Webhook-Id"], answer[2]["order_id"])
        for (external_id, request), answer in zip(deliveries, answers, strict=True)
        if answer[0] == 202
    }
    rows = await db.fetch(
        "SELECT o.external_id, o.order_id::text, w.webhook_id FROM capture.orders o"
        " LEFT JOIN capture.shopify_webhooks w USING (order_id)"
        " WHERE o.channel = 'shopify' AND o.external_id = ANY($1::text[])",
        [external_id for external_id, _ in deliveries],
    )
    assert {row["external_id"]: (row["webhook_id"], row["order_id"]) for row in rows} == taken
    # and a refused delivery sent again (Shopify retries on any answer but 2xx) is taken, once
    _, (path, fields, raw) = next(d for d, answer in zip(deliveries, answers, strict=True) if answer[0] == 503)
    again = await http.post(path, content=raw, headers=fields)
    repeated = await http.post(path, content=raw, headers=fields)
    assert again.status_code == repeated.status_code == 202, again.text
    assert again.json()["duplicate"] is False
    assert repeated.json() == {**again.json(), "duplicate": True, "status": repeated.json()["status"]}
