"""Whole numbers and yes-or-no values in every contract are what the published schemas say (`integer`, `boolean`):
pydantic's lax reading would take `"2"`, `true` or `2.0` as a quantity and `1` or `"yes"` as true, and a client, or a
fuzzer sending a documented type's wrong forms, must be refused for them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from services.returns.api import ReturnBody
from shared.contracts.events import SubmittedLine
from tests.unit.test_contract_text import contracts
from tests.unit.test_json_body import JSON, VALID, app


def lax_numbers(schema: Any, where: str) -> list[str]:
    """The places in a field's validation where a whole number or a yes-or-no value is read laxly."""
    if schema["type"] in ("int", "bool"):
        return [] if schema.get("strict") else [where]
    inner = [schema[key] for key in ("schema", "items_schema", "keys_schema", "values_schema") if key in schema]
    inner += [choice if isinstance(choice, dict) else choice[0] for choice in schema.get("choices", [])]
    inner += schema.get("steps", [])
    return [place for part in inner for place in lax_numbers(part, where)]


def test_every_whole_number_and_yes_or_no_of_every_contract_is_read_strictly() -> None:
    lax = []
    models: list[type[BaseModel]] = [*contracts(), ReturnBody]
    for model in models:
        schema: Any = model.__pydantic_core_schema__
        while schema["type"] != "model":
            schema = schema["schema"]
        for name, field in schema["schema"]["fields"].items():
            lax += lax_numbers(field["schema"], f"{model.__name__}.{name}")
    assert lax == []


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


@pytest.mark.parametrize("quantity", ["2", True, 2.0])
async def test_an_order_with_a_quantity_of_another_type_is_refused_naming_the_line(quantity: Any) -> None:
    body = json.dumps({**VALID, "lines": [{**VALID["lines"][0], "quantity": quantity}]}).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as http:
        answer = await http.post("/by-json-body", content=body, headers=JSON)
    assert answer.status_code == 422
    assert [(e["loc"], e["type"]) for e in answer.json()["detail"]] == [(["body", "lines", 0, "quantity"], "int_type")]
