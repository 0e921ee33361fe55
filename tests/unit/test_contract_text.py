"""Text in every contract is text PostgreSQL can store: a NUL character is a schema error naming the field."""

import json
import re
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.capture.api import CancelBody, HeldCancelBody, ReleaseBody
from services.returns.api import Decision, ReturnBody
from shared.contracts import topics
from shared.contracts.events import Contract, OrderRejected


def contracts() -> set[type[Contract]]:
    """Every payload model on every topic, and every contract nested in one."""
    found: set[type[Contract]] = set()
    waiting: list[type[Contract]] = [model for topic in topics.TOPICS for model in topic.payloads]
    while waiting:
        model = waiting.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            for annotation in [field.annotation, *typing.get_args(field.annotation)]:
                for part in [annotation, *typing.get_args(annotation)]:
                    if isinstance(part, type) and issubclass(part, Contract):
                        waiting.append(part)
    return found


def fields(model: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    """Each field of the model, as `Model.field`, with the schema pydantic's core validates it by."""
    schema: Any = model.__pydantic_core_schema__
    while schema["type"] != "model":  # under the model's own validators
        schema = schema["schema"]
    for name, field in schema["schema"]["fields"].items():
        yield f"{model.__name__}.{name}", field["schema"]


def inside(schema: Any) -> list[Any]:
    """The schemas a field's schema holds: under a default, a None, validators, a list's or a dict's items, a
    union's choices, a chain's steps."""
    inner = [schema[key] for key in ("schema", "items_schema", "keys_schema", "values_schema") if key in schema]
    inner += [choice if isinstance(choice, dict) else choice[0] for choice in schema.get("choices", [])]
    return [*inner, *schema.get("steps", [])]


def unchecked_text(schema: Any, where: str) -> list[str]:
    """The places in a field's validation where a string is taken without the NUL check after it."""
    if schema["type"] == "str":
        return [where]
    if schema["type"] == "chain":  # a string and its check
        return []
    return [place for part in inside(schema) for place in unchecked_text(part, where)]


def test_every_string_of_every_contract_is_checked_for_nul_characters() -> None:
    unchecked = [
        place for model in contracts() for where, schema in fields(model) for place in unchecked_text(schema, where)
    ]
    assert len(contracts()) > 50
    assert unchecked == []


@pytest.mark.parametrize("how", ["python", "json"])
def test_a_nul_character_in_a_list_of_text_is_a_schema_error_naming_the_item(how: str) -> None:
    document = {
        "order_id": str(uuid.uuid4()),
        "channel": "webshop",
        "external_id": "A-1",
        "reasons": ["fine", "not\u0000fine"],
        "customer": {"email": "a@example.test", "name": "A"},
    }
    with pytest.raises(ValidationError) as raised:
        if how == "python":
            OrderRejected.model_validate(document)
        else:
            OrderRejected.model_validate_json(json.dumps(document))  # the NUL as JSON carries it: \u0000
    assert [(e["loc"], e["msg"]) for e in raised.value.errors()] == [
        (("reasons", 1), "text must not contain NUL characters")
    ]


@pytest.mark.parametrize(
    ("body", "document", "field"),
    [
        (CancelBody, {"reason": "a\u0000b"}, "reason"),
        (ReleaseBody, {"note": "a\u0000"}, "note"),
        (HeldCancelBody, {"reason": "\u0000"}, "reason"),
        (Decision, {"reason": "x\u0000"}, "reason"),
        (ReturnBody, {"lines": [{"sku": "A", "quantity": 1, "reason": "x"}], "request_id": "r\u0000"}, "request_id"),
    ],
)
def test_the_apis_request_bodies_refuse_a_nul_character_naming_the_field(
    body: type[BaseModel], document: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        body.model_validate(document)
    assert [(e["loc"], e["msg"]) for e in raised.value.errors()] == [((field,), "text must not contain NUL characters")]


def declared_text(schema: Any, where: str) -> list[tuple[str, str | None]]:
    """Each plain text in a JSON schema (no format or fixed values) with the pattern it is declared to match."""
    if schema.get("type") == "string" and not schema.keys() & {"format", "enum", "const"}:
        return [(where, schema.get("pattern"))]
    found = [place for choice in schema.get("anyOf", ()) for place in declared_text(choice, where)]
    return found + (declared_text(schema["items"], f"{where}[]") if isinstance(schema.get("items"), dict) else [])


@pytest.mark.parametrize("model", [*sorted(contracts(), key=lambda m: m.__name__), ReturnBody, CancelBody, Decision])
def test_every_text_of_a_contract_is_declared_without_nul_in_its_schema(model: type[BaseModel]) -> None:
    # The OpenAPI and AsyncAPI documents say what the check refuses, so that a client (or a fuzzer) generating
    # valid data from them is not refused for a NUL the document allowed.
    document = model.model_json_schema()
    texts = [
        place
        for schema in [document, *document.get("$defs", {}).values()]
        for name, field in schema.get("properties", {}).items()
        for place in declared_text(field, f"{schema.get('title')}.{name}")
    ]
    assert [where for where, pattern in texts if pattern is None or re.search(pattern, "a\u0000b")] == []
