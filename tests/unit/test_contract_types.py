"""Numbers, yes-or-no values, moments and days in every contract are what the published schemas say (`integer`,
`number`, `boolean`, a `date-time` or `date` string): pydantic's lax reading would take `"2"`, `true` or `2.0` as a
quantity, `"1.5"` as a number, `1` or `"yes"` as true and a number as seconds since 1970, and a client, or a fuzzer
sending a documented type's wrong forms, must be refused for them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from services.returns.api import ReturnBody
from shared.contracts.events import ISO_TEXT, OrderShipped, ReturnRefunded, SubmittedLine, SubmittedOrder
from tests.unit.test_contract_text import contracts, fields, inside
from tests.unit.test_json_body import JSON, VALID, app


def read_strictly(schema: Any) -> list[bool]:
    """For each number, yes-or-no, moment or day in a field's validation from JSON, whether it is read as its schema
    declares it (from Python a moment or a day may be text: a decoded envelope's payload)."""
    if schema["type"] in ("int", "bool", "float"):
        return [bool(schema.get("strict"))]
    if schema["type"] in ("datetime", "date"):
        return [False]
    if schema["type"] == "json-or-python":
        first, *_ = schema["json_schema"].get("steps", [{}])
        if first.get("type") == "custom-error" and first["schema"].get("pattern") == ISO_TEXT.pattern:
            return [True]  # its text checked before it is read as a moment or a day
        return read_strictly(schema["json_schema"])
    return [strictly for part in inside(schema) for strictly in read_strictly(part)]


def test_every_number_yes_or_no_moment_and_day_of_every_contract_is_read_strictly() -> None:
    models: list[type[BaseModel]] = [*contracts(), ReturnBody]
    read = {where: read_strictly(schema) for model in models for where, schema in fields(model)}
    assert [where for where, strictly in read.items() if not all(strictly)] == []
    assert sum(len(strictly) for strictly in read.values()) > 50  # 73 when written


@pytest.mark.parametrize(
    ("placed_at", "from_json", "from_python"),
    [
        ("1765000000", "datetime_text", "datetime_type"),
        ("1765000000.5", "datetime_text", "datetime_type"),
        ("true", "datetime_text", "datetime_type"),
        ('"1765000000"', "datetime_text", "datetime_text"),  # digits: seconds since 1970 to pydantic
        ('"0"', "datetime_text", "datetime_text"),
    ],
)
def test_a_moment_given_as_a_number_or_digits_is_refused(placed_at: str, from_json: str, from_python: str) -> None:
    document = json.dumps({**VALID, "placed_at": "X"}).replace('"X"', placed_at)
    with pytest.raises(ValidationError) as from_text:
        SubmittedOrder.model_validate_json(document)
    with pytest.raises(ValidationError) as from_values:
        SubmittedOrder.model_validate(json.loads(document))
    assert [(e["loc"], e["type"]) for e in from_text.value.errors()] == [(("placed_at",), from_json)]
    assert [(e["loc"], e["type"]) for e in from_values.value.errors()] == [(("placed_at",), from_python)]


@pytest.mark.parametrize("how", ["python", "json"])
def test_a_moment_and_a_day_given_as_text_or_as_themselves_are_taken(how: str) -> None:
    shipped = {
        "order_id": str(uuid.uuid4()),
        "pick_task_id": str(uuid.uuid4()),
        "carrier": "dhl",
        "tracking_number": "T-1",
        "warehouse_id": "ams-1",
        "lines": [{"sku": "A", "quantity": 1}],
        "shipped_at": "2026-12-07T05:00:00+01:00",
        "promised_delivery": "2026-12-09",
    }
    taken = (
        OrderShipped.model_validate_json(json.dumps(shipped)) if how == "json" else OrderShipped.model_validate(shipped)
    )
    assert (taken.shipped_at, taken.promised_delivery) == (datetime(2026, 12, 7, 4, tzinfo=UTC), date(2026, 12, 9))
    assert OrderShipped.model_validate(taken.model_dump()) == taken  # from Python, the values themselves


@pytest.mark.parametrize("quantity", ['"2"', "true", "2.0", "[2]"])
@pytest.mark.parametrize("how", ["python", "json"])
def test_a_quantity_that_is_not_a_json_integer_is_refused(quantity: str, how: str) -> None:
    document = f'{{"sku": "A", "quantity": {quantity}, "unit_price": "1.00"}}'
    with pytest.raises(ValidationError) as raised:
        if how == "python":
            SubmittedLine.model_validate(json.loads(document))
        else:
            SubmittedLine.model_validate_json(document)
    assert [(e["loc"], e["type"]) for e in raised.value.errors()] == [(("quantity",), "int_type")]
    assert SubmittedLine.model_validate_json(document.replace(quantity, "2")).quantity == 2


@pytest.mark.parametrize("how", ["python", "json"])
def test_a_number_given_as_text_is_refused_and_a_whole_number_taken(how: str) -> None:
    refunded = {
        "order_id": str(uuid.uuid4()),
        "return_id": str(uuid.uuid4()),
        "refund_id": str(uuid.uuid4()),
        "amount": "10.00",
        "currency": "EUR",
        "explanation": [],
        "provider_reference": "P-1",
    }

    def read(seconds: Any) -> ReturnRefunded:
        document = {**refunded, "requested_to_refunded_seconds": seconds}
        if how == "python":
            return ReturnRefunded.model_validate(document)
        return ReturnRefunded.model_validate_json(json.dumps(document))

    with pytest.raises(ValidationError) as raised:
        read("1.5")
    assert [(e["loc"], e["type"]) for e in raised.value.errors()] == [
        (("requested_to_refunded_seconds",), "float_type")
    ]
    assert (read(1.5).requested_to_refunded_seconds, read(2).requested_to_refunded_seconds) == (1.5, 2.0)


@pytest.mark.parametrize("quantity", ["2", True, 2.0])
async def test_an_order_with_a_quantity_of_another_type_is_refused_naming_the_line(quantity: Any) -> None:
    body = json.dumps({**VALID, "lines": [{**VALID["lines"][0], "quantity": quantity}]}).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as http:
        answer = await http.post("/by-json-body", content=body, headers=JSON)
    assert answer.status_code == 422
    assert [(e["loc"], e["type"]) for e in answer.json()["detail"]] == [(["body", "lines", 0, "quantity"], "int_type")]
