"""An order posted over HTTP travels the whole pipeline on the real broker and database."""

from tests.factories import order_document
from tests.scenario import TopicReader, mail_for, new_skus, seed, wait_status
from tests.waiting import eventually


async def test_an_order_posted_over_http_is_picked_shipped_delivered_and_mailed(http) -> None:
    # given a catalogue with stock in Amsterdam
    a, b = new_skus(2)
    await seed([("ams", a, 10), ("ams", b, 10)])
    async with TopicReader("oms.warehouse.pick-tasks") as pick_tasks:
        # when a customer orders two lines
        response = await http.post("/v1/orders", json=order_document([(a, 2), (b, 1)]))
        assert response.status_code == 202
        order_id = response.json()["order_id"]

        # then the warehouse receives one pick task with both lines, keyed by the warehouse
        tasks = await eventually(lambda: pick_tasks.bodies_for(order_id), lambda found: len(found) >= 1)
        task = tasks[0]["payload"]
        assert task["warehouse_id"] == "ams"
        assert sorted((line["sku"], line["quantity"]) for line in task["lines"]) == sorted([(a, 2), (b, 1)])
        assert [r.key for r in pick_tasks.seen if order_id in r.value.decode()] == [b"ams"]

    # and the order reaches delivered with every step in its timeline
    view = await wait_status(http, order_id, {"delivered"})
    steps = [step["status"] for step in view["timeline"]]
    assert steps == ["received", "validated", "allocated", "released", "shipped", "delivered"]

    # and the customer got exactly one mail of each kind
    mails = await eventually(lambda: mail_for(order_id), lambda kinds: len(kinds) >= 3)
    assert mails == ["confirmed", "delivered", "shipped"]


async def test_an_order_that_breaks_the_rules_is_rejected_with_reasons_and_the_customer_told(http) -> None:
    (sku,) = new_skus(1)
    await seed([("ams", sku, 5)])
    response = await http.post("/v1/orders", json=order_document([(sku, 2000), ("NOT-IN-CATALOGUE", 1)]))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "rejected"
    view = await wait_status(http, body["order_id"], {"rejected"})
    assert "line 1: quantity 2000 outside 1..1000" in view["reasons"]
    assert "line 2: unknown SKU NOT-IN-CATALOGUE" in view["reasons"]
    assert await eventually(lambda: mail_for(body["order_id"]), bool) == ["rejected"]


async def test_a_malformed_order_gets_422_with_the_reasons_and_nothing_is_stored(http, db) -> None:
    document = order_document()
    document["lines"][0]["unit_price"] = 9.99
    del document["payment"]
    response = await http.post("/v1/orders", json=document)
    assert response.status_code == 422
    fields = {".".join(str(p) for p in error["loc"]) for error in response.json()["detail"]}
    assert {"body.lines.0.unit_price", "body.payment"} <= fields
    assert await db.fetchval("SELECT count(*) FROM capture.orders WHERE external_id = $1", document["external_id"]) == 0


async def test_an_oversized_body_is_refused_with_413(http) -> None:
    document = order_document()
    document["customer"]["name"] = "x" * 300_000
    response = await http.post("/v1/orders", json=document)
    assert response.status_code == 413
