"""Return requests on the real stack: eligibility decided by the returns service with every reason, duplicates
refused, malformed requests answered with their reasons, operators deciding those left to review (API and `oms`),
and the channels' topic taking the same requests."""

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.returns.answers import ReturnAnswer, Returns
from shared.contracts import topics
from tests.local import client
from tests.returns_steps import (
    ask_return,
    channel_key,
    delivered_order,
    operator_key,
    return_line,
    return_view,
    returns_api,
)
from tests.scenario import TopicReader, as_documented, mail_for, new_skus, restart, seed
from tests.waiting import eventually

OMS = Path(sys.executable).parent / "oms"


async def oms(*args: str) -> Any:
    """The `oms` command as an operator runs it, its --json output."""
    done = await asyncio.to_thread(
        subprocess.run, [str(OMS), *args, "--json"], check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(done.stdout)


async def test_a_second_request_for_the_same_units_is_refused_and_a_repeated_request_gets_its_first_answer(
    http, db
) -> None:
    # given a delivered order of two units of one SKU, one of them asked back already
    (sku,) = new_skus(1, prefix="RQ")
    await seed([("ams", sku, 2)])
    order_id = await delivered_order(http, db, [(sku, 2)])
    request_id = f"req-{uuid.uuid4()}"
    first = await ask_return(order_id, [return_line(sku)], request_id=request_id)
    assert first.status_code == 201, first.text

    # when the channel sends the same request again, it gets the first answer and nothing new is recorded
    again = await ask_return(order_id, [return_line(sku)], request_id=request_id)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["return_id"] == first.json()["return_id"]

    # and when a new request asks for both units, one of which is already on the RMA, it is refused with the reason
    both = await ask_return(order_id, [return_line(sku, 2)])
    assert both.status_code == 409
    assert both.json()["status"] == "rejected"
    assert both.json()["reasons"] == [f"{sku}: 2 asked back, 1 returnable (2 shipped, 1 already asked back)"]
    # the refusal is recorded, the customer told once
    assert await db.fetchval("SELECT count(*) FROM returns.returns WHERE order_id = $1", uuid.UUID(order_id)) == 2
    kinds = await eventually(lambda: mail_for(order_id), lambda k: "return_rejected" in k)
    assert kinds.count("return_rejected") == 1 and kinds.count("return_authorised") == 1


async def test_a_malformed_request_gets_422_with_every_reason_and_another_channel_gets_403(http, db) -> None:
    (sku,) = new_skus(1, prefix="RQ")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)])

    response = await ask_return(order_id, [return_line(sku, reason="bored"), return_line("NOT-IN-ORDER")])
    assert response.status_code == 422
    reasons = response.json()["reasons"]
    assert reasons[0].startswith("line 1: unknown reason code bored (known: ")
    assert reasons[1:] == ["line 2: SKU NOT-IN-ORDER is not in the order"]
    assert await db.fetchval("SELECT count(*) FROM returns.returns WHERE order_id = $1", uuid.UUID(order_id)) == 0

    schema = await ask_return(order_id, [{"sku": sku, "quantity": 0, "reason": "size.too_small"}])
    assert schema.status_code == 422
    assert (await ask_return(order_id, [return_line(sku)], auth=channel_key("marketplace"))).status_code == 403
    assert (await ask_return(str(uuid.uuid4()), [return_line(sku)])).status_code == 404
    async with returns_api() as api:
        oversized = await api.post(f"/v1/orders/{order_id}/returns", content=b"x" * 300_000)
        assert oversized.status_code == 413
        assert (await api.get("/v1/returns")).status_code == 403  # the list is for operators


async def test_a_reason_an_operator_checks_waits_for_review_and_is_decided_through_the_api_and_oms(http, db) -> None:
    # given a delivered order of two SKUs
    first, second = new_skus(2, prefix="RV")
    await seed([("ams", first, 1), ("ams", second, 1)])
    order_id = await delivered_order(http, db, [(first, 1), (second, 1)])

    # when the customer says they stopped working (a reason the policy leaves to an operator)
    review = await ask_return(order_id, [return_line(first, reason="damaged.defective")])
    other = await ask_return(order_id, [return_line(second, reason="damaged.defective")])

    # then both wait for review, listed for operators
    assert review.status_code == other.status_code == 202
    assert review.json()["status"] == "review" and review.json()["rma"] is None
    assert review.json()["reasons"] == [f"{first}: reason damaged.defective is checked by an operator"]
    async with returns_api(operator_key()) as api:
        listed = await api.get("/v1/returns", params={"status": "review", "limit": 1000})
        waiting = as_documented(listed, Returns)["returns"]
        assert {review.json()["return_id"], other.json()["return_id"]} <= {r["return_id"] for r in waiting}

        # when an operator approves one through the API, it is authorised with its RMA
        approved = await api.post(f"/v1/returns/{review.json()['return_id']}/approve")
        assert approved.status_code == 200 and as_documented(approved, ReturnAnswer)["rma"].startswith("RMA-")
        assert approved.json()["decided_by"].startswith("operator:")
        # and deciding it again is refused
        again = await api.post(f"/v1/returns/{review.json()['return_id']}/reject", json={"reason": "changed my mind"})
        assert again.status_code == 409 and again.json()["reasons"] == [
            "the return is authorised, not waiting for a decision"
        ]
        # a channel's key may not decide
        async with returns_api() as channel_api:
            assert (await channel_api.post(f"/v1/returns/{other.json()['return_id']}/approve")).status_code == 403

    # and when an operator rejects the other with `oms`, the customer is told the reason
    shown = await oms("returns", "reject", other.json()["return_id"], "--reason", "outside the warranty")
    assert shown["status"] == "rejected"
    assert (await return_view(other.json()["return_id"]))["reasons"] == ["outside the warranty"]
    listed = await oms("returns", "list", "--status", "rejected", "--limit", "1000")
    assert other.json()["return_id"] in {r["return_id"] for r in listed}
    kinds = await eventually(lambda: mail_for(order_id), lambda k: {"return_authorised", "return_rejected"} <= set(k))
    assert kinds.count("return_rejected") == 1


async def test_a_request_on_the_channels_topic_is_decided_and_announced(http, db) -> None:
    # A KEEP SKU: the simulated customer never sends the parcel, so the return stays authorised while we look
    # (otherwise the parcel can arrive, and the return move on to received, before the assertions run).
    (sku,) = new_skus(1, prefix="RT-KEEP")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)])
    channel, external_id = await db.fetchrow(
        "SELECT channel, external_id FROM returns.orders WHERE order_id = $1", uuid.UUID(order_id)
    )
    request = {
        "channel": channel,
        "external_id": external_id,
        "request_id": f"req-{uuid.uuid4()}",
        "lines": [return_line(sku, reason="wrong_item")],
        "note": "this is not what I ordered",
    }
    async with TopicReader(topics.RETURN_EVENTS.name) as events:
        # when the channel publishes the request twice (a redelivery under another record)
        await client.publish(topics.RETURN_REQUESTS.name, [(f"{channel}:{external_id}", request)] * 2)

        # then it is authorised once and announced with its RMA
        found = await eventually(lambda: events.bodies_for(order_id), lambda b: len(b) >= 1)
        assert [b["type"] for b in found] == ["ReturnAuthorised"]
    await client.wait_caught_up("oms-returns", [topics.RETURN_REQUESTS.name])
    rows = await db.fetch("SELECT source, status, note FROM returns.returns WHERE order_id = $1", uuid.UUID(order_id))
    assert [tuple(r) for r in rows] == [("topic", "authorised", "this is not what I ordered")]


async def test_outside_the_window_a_request_is_rejected_with_the_reason(http, db, pipeline) -> None:
    # given a delivered order, and the returns service living 40 days later (the window is 30 days)
    (sku,) = new_skus(1, prefix="RW")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)])
    delivered_at = await db.fetchval("SELECT delivered_at FROM returns.deliveries WHERE order_id = $1",
                                     uuid.UUID(order_id))  # fmt: skip
    later = (delivered_at.replace(microsecond=0)).isoformat()
    returns = pipeline["returns"]
    try:
        await restart(returns, {"OMS_CLOCK_START": (delivered_at + timedelta(days=40)).isoformat()})
        # when the customer asks to return it
        response = await ask_return(order_id, [return_line(sku)])
    finally:
        await restart(returns, {})

    # then it is refused with the reason
    assert response.status_code == 409
    assert response.json()["reasons"] == [
        f"{sku}: the return window of 30 days from delivery on {later[:10]} has passed"
    ]


async def test_a_malformed_request_on_the_topic_is_dead_lettered_with_its_reasons(http, db) -> None:
    (sku,) = new_skus(1, prefix="RT")
    await seed([("ams", sku, 1)])
    order_id = await delivered_order(http, db, [(sku, 1)])
    channel, external_id = await db.fetchrow(
        "SELECT channel, external_id FROM returns.orders WHERE order_id = $1", uuid.UUID(order_id)
    )
    request = {
        "channel": channel,
        "external_id": external_id,
        "request_id": f"req-{uuid.uuid4()}",
        "lines": [return_line(sku, reason="bored")],
    }
    async with TopicReader(topics.dead_letter_topic("returns")) as dead_letters:
        await client.publish(topics.RETURN_REQUESTS.name, [(f"{channel}:{external_id}", request)])
        records = await eventually(
            dead_letters.read, lambda seen: any(request["request_id"].encode() in (r.value or b"") for r in seen)
        )
    record = next(r for r in records if request["request_id"].encode() in (r.value or b""))
    reason = dict(record.headers)["dlq.reason"].decode()
    assert reason.startswith("handler failed: ValueError: line 1: unknown reason code bored (known: ")
    assert await db.fetchval("SELECT count(*) FROM returns.returns WHERE order_id = $1", uuid.UUID(order_id)) == 0
