"""What a replayed dead letter carries: the original headers without the dead-letter ones, a mark naming
the dead letter, and the event id the original record had (so a second replay is a harmless duplicate)."""

from dataclasses import replace

import pytest

from deploy.cli.dlq import DeadLetter, replay, replay_refusal
from shared.contracts.envelope import external_event_id
from tests.local import LOCAL


def dead_letter(origin_topic: str, *extra: tuple[str, bytes]) -> DeadLetter:
    return DeadLetter(
        "oms.dead-letter.capture",
        1,
        42,
        b"webshop:A-1",
        b"{}",
        (
            ("traceparent", b"00-abc"),
            *extra,
            ("dlq.reason", b"oversized: 5000 bytes, limit 4000"),
            ("dlq.origin.topic", origin_topic.encode()),
            ("dlq.origin.partition", b"3"),
            ("dlq.origin.offset", b"17"),
            ("dlq.origin.timestamp", b"1764000000000"),
            ("dlq.service", b"capture"),
        ),
    )


def test_a_bare_record_is_replayed_with_the_id_derived_from_the_original_record() -> None:
    headers = dict(dead_letter("oms.orders.submitted").replay_headers())
    original = external_event_id("oms.orders.submitted", 3, 17, 1_764_000_000_000, b"webshop:A-1", b"{}")
    assert headers["event_id"] == str(original).encode()
    assert headers["oms.replay.of"] == b"oms.dead-letter.capture:1:42"
    assert headers["traceparent"] == b"00-abc"
    assert not [k for k in headers if k.startswith("dlq.")]


def test_a_record_that_came_with_an_event_id_keeps_it_through_every_replay() -> None:
    again = dead_letter("oms.orders.submitted", ("event_id", b"given-id"), ("oms.replay.of", b"older:0:1"))
    headers = again.replay_headers()
    assert [v for k, v in headers if k == "event_id"] == [b"given-id"]
    assert [v for k, v in headers if k == "oms.replay.of"] == [b"oms.dead-letter.capture:1:42"]


def test_an_envelope_carries_its_id_in_the_body_and_needs_no_header() -> None:
    headers = dict(dead_letter("oms.fulfillment.events").replay_headers())
    assert "event_id" not in headers


def test_a_dead_letter_goes_back_only_to_an_input_of_the_service_that_set_it_aside() -> None:
    assert replay_refusal(dead_letter("oms.orders.submitted")) is None
    # capture's dead-letter topic naming a topic capture does not read (a forged or mistaken origin header)
    forged = replay_refusal(dead_letter("oms.orders.validated"))
    assert forged is not None and "not an input of 'capture'" in forged
    # the record's own dlq.service header is not believed: the topic it was read from says who set it aside
    claims = replace(dead_letter("oms.orders.validated"), headers=(("dlq.service", b"allocation"),))
    assert claims.service == "capture" and replay_refusal(claims) is not None


async def test_nothing_is_replayed_when_one_of_the_letters_may_not_be() -> None:
    with pytest.raises(ValueError, match="not an input"):
        await replay(LOCAL, [dead_letter("oms.orders.submitted"), dead_letter("oms.orders.validated")])
