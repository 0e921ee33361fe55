"""Capture's live HTTP API against generated requests: whatever the body or path, the answer is a 2xx or a
4xx the OpenAPI document declares, in the shape it declares; never a 5xx. Requests are generated from the
document itself (/openapi.json) by schemathesis, valid and invalid ones, a bounded number per operation."""

import json
from typing import Any

import httpx
import pytest
from hypothesis import strategies as st

from deploy.local.keys import DevelopmentKeys
from tests import fuzzing
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import new_skus, seed

EXAMPLES = 150  # per operation: about 15 s each on this machine
OPERATIONS = [
    ("/v1/orders", "POST"),
    ("/v1/orders/{order_id}/cancel", "POST"),
    ("/v1/orders/{order_id}", "GET"),
    ("/v1/holds", "GET"),
    ("/v1/orders/{order_id}/holds", "GET"),
    ("/v1/orders/{order_id}/holds/release", "POST"),
    ("/v1/orders/{order_id}/holds/cancel", "POST"),
]


@pytest.fixture(scope="module")
def capture_schema(pipeline: Any) -> Any:
    return fuzzing.schema_of("capture")


@pytest.fixture(scope="module")
async def known_orders(pipeline: Any) -> list[str]:
    """An order waiting for stock (it can be cancelled), a rejected one (it cannot) and one on hold (the channel
    said investigate: it can be released or cancelled from hold), so that generated requests reach real orders, not
    only unknown ids."""
    (sku,) = new_skus(1, prefix="FUZZ")
    await seed([("ams", sku, 0)])
    async with httpx.AsyncClient(
        base_url=LOCAL.http_url("capture"), timeout=30, auth=DevelopmentKeys(LOCAL.keys_file)
    ) as http:
        waiting = await http.post("/v1/orders", json=order_document([(sku, 2)]))
        rejected = await http.post("/v1/orders", json=order_document([(f"UNKNOWN-{sku}", 1)]))
        held = await http.post("/v1/orders", json=order_document([(sku, 1)], channel_risk="investigate"))
    assert held.json()["status"] == "on_hold", held.text
    return [waiting.json()["order_id"], rejected.json()["order_id"], held.json()["order_id"]]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_generated_requests_never_get_a_server_error_and_responses_match_the_schema(
    capture_schema: Any, known_orders: list[str], path: str, method: str
) -> None:
    operation = capture_schema[path][method]
    valid_and_invalid = st.one_of(fuzzing.strategies(operation, {"order_id": known_orders}))
    # Orders go in with the webshop's key, reads and cancels with the operator's (keys are tested elsewhere).
    development = json.loads(LOCAL.keys_file.read_text())
    token = development["channels"]["webshop"] if method == "POST" and path == "/v1/orders" else development["operator"]
    keys = {"Authorization": f"Bearer {token}"}

    def request_to_capture(case: Any, _: None) -> None:
        if fuzzing.positive(case) and isinstance(case.body, dict) and "channel" in case.body:
            case.body["channel"] = "webshop"  # the key's own channel: the order reaches the business rules
        case.call_and_validate(checks=fuzzing.CHECKS, timeout=30, headers=keys)

    fuzzing.send(valid_and_invalid, request_to_capture, EXAMPLES)
