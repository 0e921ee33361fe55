"""Orders at and beyond intake's limits: the schema bounds give a 422 with the reason, the business rules a
rejected order with its reasons, over HTTP and on the intake topic alike; never a 500, never a dead letter."""

import json
import uuid
from decimal import Decimal

from shared.contracts import topics
from tests.factories import order_document
from tests.local import client
from tests.scenario import TopicReader, new_skus, order_view, seed
from tests.waiting import eventually

OVER_THE_RULE_TOGETHER = "quantity 1200 over its 2 lines outside 1..1000"


async def test_two_lines_of_one_sku_over_the_quantity_rule_together_are_rejected_with_the_reason(http) -> None:
    # given a SKU in the catalogue, with stock
    sku, other = new_skus(2)
    await seed([("ams", sku, 5), ("ams", other, 5)])

    # when an order asks for it in two lines of 600 units, each line within 1..1000
    document = order_document([(sku, 600), (other, 1), (sku, 600)])
    response = await http.post("/v1/orders", json=document)

    # then it is taken in and rejected for the quantity of the SKU over its lines
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "rejected"
    view = await order_view(http, response.json()["order_id"])
    assert view["reasons"] == [f"SKU {sku}: {OVER_THE_RULE_TOGETHER}"]
    assert view["ordered"] == {sku: 1200, other: 1}


async def test_the_same_order_on_the_intake_topic_becomes_a_rejected_order_not_a_dead_letter(pipeline, db) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    document = order_document([(sku, 600), (sku, 600)], channel="marketplace")
    key = f"marketplace:{document['external_id']}"

    async with TopicReader(topics.dead_letter_topic("capture")) as dead_letters:
        # when a channel adapter publishes it on the intake topic
        await client.publish(topics.ORDERS_SUBMITTED.name, [(key, document)])

        # then capture stores it as rejected, with the reason
        row = await eventually(
            lambda: db.fetchrow(
                "SELECT status, reasons FROM capture.orders WHERE channel = 'marketplace' AND external_id = $1",
                document["external_id"],
            ),
            lambda found: found is not None,
        )
        assert row["status"] == "rejected"
        assert json.loads(row["reasons"]) == [f"SKU {sku}: {OVER_THE_RULE_TOGETHER}"]
        # and its record was not dead-lettered (a dead letter is sent before the batch's offsets are committed)
        await client.wait_caught_up("oms-capture", [topics.ORDERS_SUBMITTED.name])
        assert [r for r in await dead_letters.read() if r.key == key.encode()] == []


async def test_quantities_outside_the_schema_bounds_are_refused_with_422_and_the_reason(http, db) -> None:
    (sku,) = new_skus(1)
    for quantity in (-1, 1_000_001, 10**40):
        document = order_document([(sku, quantity)], amount="1.00")

        response = await http.post("/v1/orders", json=document)

        assert response.status_code == 422, response.text
        (problem,) = response.json()["detail"]
        assert problem["loc"] == ["body", "lines", 0, "quantity"]
        assert (
            await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", document["external_id"])
            == 0
        )


async def test_nan_and_infinity_which_json_has_not_are_refused_with_422_not_a_500(http, db) -> None:
    """Python's JSON parser takes them; the refusal repeats the input, and could not be written before."""
    (sku,) = new_skus(1)
    for number, field in (("NaN", "shipping_price"), ("-Infinity", "placed_at"), ("Infinity", "channel")):
        document = order_document([(sku, 1)], amount="1.00")
        body = json.dumps({**document, field: "NUMBER"}).replace('"NUMBER"', number)

        response = await http.post("/v1/orders", content=body, headers={"content-type": "application/json"})

        assert response.status_code == 422, response.text
        assert [problem["loc"] for problem in response.json()["detail"]] == [["body", field]]
        assert (
            await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", document["external_id"])
            == 0
        )


async def test_the_largest_order_the_schema_allows_is_stored_as_rejected_with_its_total(http, db) -> None:
    # given an order at every ceiling of the schema: 1000 lines of 1,000,000 units at the highest price
    (sku,) = new_skus(1)
    ceiling = str(10**9)
    document = order_document([(sku, 1_000_000)] * 1000, unit_price=ceiling, shipping_price=ceiling, amount="1.00")

    # when it is submitted
    response = await http.post("/v1/orders", json=document)

    # then it is taken in and rejected with reasons, its total stored exactly
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "rejected"
    view = await order_view(http, response.json()["order_id"])
    assert "too many lines: 1000, at most 100" in view["reasons"]
    expected_total = Decimal(1000) * 1_000_000 * 10**9 + 10**9
    assert Decimal(view["total"]) == expected_total
    assert await db.fetchval(
        "SELECT total FROM capture.orders WHERE order_id = $1", uuid.UUID(response.json()["order_id"])
    ) == Decimal(expected_total)
