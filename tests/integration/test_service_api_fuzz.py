"""Every service's HTTP API besides capture's (tests/integration/test_capture_api_fuzz.py) against generated
requests (tests/fuzzing.py), with an operator's key, a channel's, or none: never a 5xx, and every answer one the
service's OpenAPI document declares, in its shape. An outside fuzzer found what this guards: a large number in a
query, or a NUL in one, answered 500, and no document declared the keys' 401, 403 and 429 nor the 404s (the KPI
period's year 1 at +14:00, which no database takes, was a third 500)."""

import json
from typing import Any

import httpx
import pytest
from hypothesis import strategies as st

from tests import fuzzing
from tests.local import LOCAL
from tests.returns_steps import ask_return, channel_key, delivered_order, return_line
from tests.scenario import new_skus, seed

EXAMPLES = 100  # per operation: GETs of a few milliseconds each, about 20 s in all
SERVICES = ("allocation", "fulfillment", "notifications", "returns", "kpis")


@pytest.fixture(scope="module")
async def known_ids(pipeline: Any, db: Any) -> dict[str, list[str]]:
    """A delivered order every service has seen, and a return of it, so that generated requests reach real ones."""
    (sku,) = new_skus(1, prefix="FUZZ")
    await seed([("ams", sku, 5)])
    async with httpx.AsyncClient(base_url=LOCAL.http_url("capture"), timeout=30, auth=channel_key()) as http:
        order_id = await delivered_order(http, db, [(sku, 2)])
    asked = await ask_return(order_id, [return_line(sku)])
    assert asked.status_code in (201, 202), asked.text
    return {"order_id": [order_id], "return_id": [asked.json()["return_id"]]}


@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_never_get_a_server_error_and_answers_match_the_document(
    service: str, known_ids: dict[str, list[str]]
) -> None:
    schema = fuzzing.schema_of(service)
    development = json.loads(LOCAL.keys_file.read_text())
    keys = {
        "operator": {"Authorization": f"Bearer {development['operator']}"},
        "channel": {"Authorization": f"Bearer {development['channels']['webshop']}"},
        "none": {},
    }
    for result in schema.get_all_operations():
        operation = result.ok()
        valid_and_invalid = st.one_of(fuzzing.strategies(operation, known_ids))

        def call(case: Any, key: str) -> None:
            case.call_and_validate(checks=fuzzing.CHECKS, timeout=30, headers=keys[key])

        fuzzing.send(valid_and_invalid, call, EXAMPLES, extra=st.sampled_from(sorted(keys)))
