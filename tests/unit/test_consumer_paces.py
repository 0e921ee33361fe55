"""Which consumer of a service reads what: the order path's topic alone, paced for latency, and everything else
in a second member of the same group, paced for fewer and larger batches."""

from __future__ import annotations

from typing import Any

from shared.backbone.consumer import EventConsumer, Routes
from shared.backbone.runtime import Runtime, by_pace
from shared.backbone.settings import CommonSettings, Pacing
from shared.contracts import events as ev


async def handle(conn: Any, records: list[Any]) -> None:
    return None


def test_capture_reads_its_intake_apart_from_the_status_reports_it_follows() -> None:
    paces = by_pace("capture", {ev.SubmittedOrder: handle, ev.OrderAllocated: handle, ev.ProductUpserted: handle})

    assert paces == [
        (True, {ev.SubmittedOrder: handle}),
        (False, {ev.OrderAllocated: handle, ev.ProductUpserted: handle}),
    ]


def test_fulfillment_reads_every_allocation_event_on_the_order_path() -> None:
    paces = by_pace(
        "fulfillment", {ev.OrderAllocated: handle, ev.OrderBackordered: handle, ev.WarehouseReported: handle}
    )

    assert paces == [
        (True, {ev.OrderAllocated: handle, ev.OrderBackordered: handle}),
        (False, {ev.WarehouseReported: handle}),
    ]


def test_a_follower_reads_the_order_path_topics_at_the_follow_up_pace() -> None:
    routes: Routes = {ev.OrderValidated: handle, ev.OrderAllocated: handle}

    assert by_pace("notifications", routes) == [(False, routes)]


def test_a_service_reading_only_its_order_path_has_one_consumer() -> None:
    assert by_pace("allocation", {ev.OrderValidated: handle}) == [(True, {ev.OrderValidated: handle})]


def test_each_pace_takes_its_own_settings() -> None:
    settings = CommonSettings(
        service="unit-paces",
        consumer_linger_ms=7,
        consumer_fetch_wait_ms=11,
        consumer_fetch_min_bytes=13,
        follow_up_linger_ms=17,
        follow_up_fetch_wait_ms=19,
        follow_up_fetch_min_bytes=23,
    )

    assert settings.pacing(order_path=True) == Pacing(linger_ms=7, fetch_wait_ms=11, fetch_min_bytes=13)
    assert settings.pacing(order_path=False) == Pacing(linger_ms=17, fetch_wait_ms=19, fetch_min_bytes=23)


async def test_the_follow_up_consumer_names_itself_apart_and_is_paced_as_set() -> None:
    settings = CommonSettings(service="unit-paces", consumer_poll_ms=200, follow_up_fetch_wait_ms=250)
    routes = {ev.ProductUpserted: handle}
    follow_up = EventConsumer(settings, None, None, routes, order_path=False)  # type: ignore[arg-type]
    path = EventConsumer(settings, None, None, routes)  # type: ignore[arg-type]

    client, path_client = follow_up._consumer(), path._consumer()

    assert (client._client._client_id, client._fetch_max_wait_ms, client._fetch_min_bytes) == (
        "oms-unit-paces-1-follow-up",
        250,
        1_000_000,
    )
    assert (path_client._client._client_id, path_client._fetch_max_wait_ms, path_client._fetch_min_bytes) == (
        "oms-unit-paces-1",
        500,
        1,
    )
    # The search for an unreadable record waits out a fetch the broker holds (else it would give up on it).
    assert follow_up._search_poll_ms == 450


async def test_an_instance_whose_consumer_got_no_partitions_is_ready_once_it_joined() -> None:
    runtime = Runtime(CommonSettings(service="unit-paces"))
    runtime._pool = Answering()  # type: ignore[assignment]
    # given more members in the group than the order path's topic has partitions
    consumer = EventConsumer(runtime.settings, None, None, {ev.SubmittedOrder: handle})  # type: ignore[arg-type]
    runtime.consumers.append(consumer)
    assert await runtime.ready() == {"database": True, "consumer": False}

    # when the group's assignment gives it none
    consumer.reassignments.on_partitions_assigned(set())

    # then the instance stands by, ready
    assert await runtime.ready() == {"database": True, "consumer": True}


class Answering:
    """A database that answers."""

    async def fetchval(self, query: str) -> bool:
        return True
