"""Capture's live HTTP API against generated requests: whatever the body or path, the answer is a 2xx or a
4xx the OpenAPI document declares, in the shape it declares; never a 5xx. Requests are generated from the
document itself (/openapi.json) by schemathesis, valid and invalid ones, a bounded number per operation."""

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from deploy.local.keys import DevelopmentKeys
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import new_skus, seed

EXAMPLES = 150  # per operation: about 15 s each on this machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
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
    return schemathesis.openapi.from_url(f"{LOCAL.http_url('capture')}/openapi.json", wait_for_schema=30)


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
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    if "{order_id}" in path:
        strategies += [
            operation.as_strategy(mode, path_parameters={"order_id": order_id})
            for mode in modes
            for order_id in known_orders
        ]
    valid_and_invalid = st.one_of(strategies)
    # Orders go in with the webshop's key, reads and cancels with the operator's (keys are tested elsewhere).
    development = json.loads(LOCAL.keys_file.read_text())
    token = development["channels"]["webshop"] if method == "POST" and path == "/v1/orders" else development["operator"]
    keys = {"Authorization": f"Bearer {token}"}

    @given(case=valid_and_invalid)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def requests_to_capture(case: Any) -> None:
        positive = case.meta is not None and case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE
        # A query value made only of empty lists and objects is not sent at all, so what reaches the server is a
        # valid request: no negative case (seen: hold_type=[{}, [], []] sent as `?limit=1`, then "accepted").
        assume(positive or all(_on_the_wire(value) for value in (case.query or {}).values()))
        if positive and isinstance(case.body, dict) and "channel" in case.body:
            case.body["channel"] = "webshop"  # the key's own channel: the order reaches the business rules
        case.call_and_validate(checks=CHECKS, timeout=30, headers=keys)

    requests_to_capture()


def _on_the_wire(value: Any) -> bool:
    """Whether a query parameter's value puts anything in the URL (a scalar somewhere inside it)."""
    if isinstance(value, dict):
        return any(_on_the_wire(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_on_the_wire(v) for v in value)
    return True
