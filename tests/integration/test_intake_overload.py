"""An API intake past its queue's limit: each order it cannot take in time is answered at once with 503 and
Retry-After and is not taken, every order it answered 202 is, and a refused order sent again is taken."""

import asyncio
import json
from typing import Any

import httpx

from deploy.local import processes
from deploy.local.keys import DevelopmentKeys
from tests.factories import order_document
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


async def post_at_once(port: int, documents: list[dict[str, Any]]) -> list[tuple[int, dict[str, str], Any]]:
    """Each order on a connection of its own, every request written only once all connections are open, so that
    they reach the service together (an HTTP client library would send them one after the other)."""
    keys = DevelopmentKeys(LOCAL.keys_file)
    connections = [await asyncio.open_connection(LOCAL.host, port) for _ in documents]
    for (_, writer), document in zip(connections, documents, strict=True):
        body = json.dumps(document).encode()
        token = keys.token_for(httpx.Request("POST", f"http://{LOCAL.host}:{port}/v1/orders", content=body))
        head = (
            f"POST /v1/orders HTTP/1.1\r\nHost: {LOCAL.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, dict[str, str], Any]:
        # To the end (the service closes the connection after its answer), within a deadline: a lost answer fails.
        raw = await asyncio.wait_for(reader.read(), ANSWER_SECONDS)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *fields = head.decode().split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
        return int(status_line.split()[1]), headers, json.loads(body)

    return await asyncio.gather(*(answer(reader, writer) for reader, writer in connections))


async def test_orders_past_the_queue_limit_get_503_with_retry_after_and_only_the_accepted_are_taken(
    db, pipeline, http
) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 1000)])
    documents = [order_document([(sku, 1)]) for _ in range(ORDERS)]
    instance = busy_capture()
    instance.start()
    try:
        instance.wait_ready()
        # given one order written, so that the instance knows how long a round takes
        ((status, _, _),) = await post_at_once(instance.http_port or 0, [order_document([(sku, 1)])])
        assert status == 202
        # when the orders arrive together
        answers = await post_at_once(instance.http_port or 0, documents)
    finally:
        instance.stop()

    # then each is either taken (202) or refused at once (503 with Retry-After and the reason)
    assert {status for status, _, _ in answers} == {202, 503}, answers[:3]
    refused = [d for d, (status, _, _) in zip(documents, answers, strict=True) if status == 503]
    for status, headers, body in answers:
        if status == 503:
            assert int(headers["retry-after"]) >= 1
            assert "busy" in body["detail"]
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
