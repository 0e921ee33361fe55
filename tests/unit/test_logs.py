"""Structured logs: JSON in production with the ids of the work in hand, readable elsewhere; requests get a
correlation id (the caller's if it is a UUID, else a new one)."""

import json
import logging
import uuid

import httpx
from fastapi import FastAPI

from shared.backbone import logs
from shared.backbone.http import CorrelationId


def record(message: str = "reserved stock") -> logging.LogRecord:
    entry = logging.LogRecord("services.allocation", logging.INFO, __file__, 1, message, (), None)
    logs.ContextFilter().filter(entry)
    return entry


def test_production_lines_are_json_with_the_bound_ids() -> None:
    order_id, event_id = uuid.uuid4(), uuid.uuid4()
    with logs.bound(order_id=order_id, event_id=event_id, correlation_id=None):
        line = json.loads(logs.JsonFormatter("allocation").format(record()))
    assert line["message"] == "reserved stock"
    assert line["service"] == "allocation" and line["level"] == "info"
    assert line["order_id"] == str(order_id) and line["event_id"] == str(event_id)
    assert "correlation_id" not in line


def test_ids_are_unbound_after_the_block() -> None:
    with logs.bound(order_id=uuid.uuid4()):
        pass
    assert logs.current() == {}
    assert "order_id" not in json.loads(logs.JsonFormatter("capture").format(record()))


def test_development_lines_are_readable_with_the_ids_at_the_end() -> None:
    order_id = uuid.uuid4()
    with logs.bound(order_id=order_id):
        line = logs.ReadableFormatter("capture").format(record("order validated"))
    assert line.endswith(f"capture INFO services.allocation: order validated  [order={order_id}]")


def app() -> FastAPI:
    service = FastAPI()
    service.add_middleware(CorrelationId)

    @service.get("/ids")
    async def ids() -> dict[str, str]:
        return logs.current()

    return service


async def test_a_request_keeps_the_callers_correlation_id_and_echoes_it() -> None:
    given = str(uuid.uuid4())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as http:
        response = await http.get("/ids", headers={"X-Correlation-Id": given})
    assert response.json() == {"correlation_id": given}
    assert response.headers["x-correlation-id"] == given


async def test_a_correlation_id_that_is_not_a_uuid_is_replaced() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as http:
        response = await http.get("/ids", headers={"X-Correlation-Id": "jane@example.test"})
    chosen = response.json()["correlation_id"]
    assert uuid.UUID(chosen) and "example" not in response.headers["x-correlation-id"]


def test_a_production_service_logs_json_and_a_development_one_readable_lines() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("capture", "production", "INFO")
        assert isinstance(root.handlers[0].formatter, logs.JsonFormatter)
        logs.configure("capture", "development", "INFO")
        assert isinstance(root.handlers[0].formatter, logs.ReadableFormatter)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
