"""Whatever a record holds (bytes, JSON of any shape, nesting, size, headers), decoding it gives a result and
never raises: either a decoded event or a precise, bounded reason for the dead-letter topic.

Every business topic is read by at least one service, so all of them are fuzzed."""

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.backbone.kafka import MAX_REASON_CHARS, Inbound, Origin, Undecodable, _decode_valid, _explained, decode
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.envelope import EnvelopeHead, wrap
from tests.factories import Record, order_document, validated_order

MAX_BYTES = CommonSettings().max_body_bytes
INBOUND_TOPICS = [t.name for t in topics.BUSINESS_TOPICS]


def outcome(record: Record) -> Inbound[Any] | Undecodable:
    result = decode(record, MAX_BYTES)
    assert isinstance(result, Inbound | Undecodable)
    if isinstance(result, Undecodable):
        assert result.reason and len(result.reason) <= MAX_REASON_CHARS
    else:
        assert isinstance(result.payload, topics.BY_NAME[record.topic].payloads)
    return result


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
envelope_like = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str) | json_values,
        "type": st.sampled_from(["OrderValidated", "OrderAllocated", "OrderShipped", "Nope"]) | json_values,
        "version": st.integers(-2, 3) | json_values,
        "occurred_at": st.just("2026-11-21T10:00:00Z") | json_values,
        "correlation_id": st.uuids().map(str),
        "producer": st.text(max_size=10),
        "payload": st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    }
)


def mutated_order(path_and_value: tuple[str, Any]) -> bytes:
    document = order_document()
    field, value = path_and_value
    document[field] = value
    return json.dumps(document).encode()


def nested(opening: bytes, depth: int) -> bytes:
    return opening * depth


values = st.one_of(
    st.none(),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelope_like.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.sampled_from(list(order_document())), json_values).map(mutated_order),
    st.tuples(st.sampled_from([b"[", b'{"a":', b"[{", b'{"lines":[']), st.integers(500, 200_000)).map(
        lambda t: nested(*t)
    ),
    st.integers(2_000, 10_000).map(lambda n: b'{"quantity": ' + b"9" * n + b"}"),
    st.integers(MAX_BYTES - 2, MAX_BYTES + 2).map(lambda n: b" " * n),
)
header_values = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.uuids().map(lambda u: str(u).encode()),
    st.just(b"\xff\xfe\xfd"),
    st.just(b""),
)
headers = st.lists(
    st.tuples(
        st.sampled_from(["event_id", "traceparent", "dlq.reason", "oms.replay.of"]) | st.text(max_size=8), header_values
    ),
    max_size=4,
).map(tuple)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(INBOUND_TOPICS), value=values, key=st.none() | st.binary(max_size=20), heads=headers)
def test_any_record_on_any_inbound_topic_decodes_or_gets_a_reason(topic, value, key, heads) -> None:
    outcome(Record(topic, value, key, heads))


@pytest.mark.parametrize("topic", INBOUND_TOPICS)
def test_a_200_kb_record_of_brackets_is_refused_as_too_deeply_nested(topic) -> None:
    result = outcome(Record(topic, b"[" * 200_000))
    assert isinstance(result, Undecodable)
    assert result.reason == "not JSON: nested too deeply"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "event_id header is null"),
        (b"\xff\xfe", "event_id header is not UTF-8"),
        (b"not-a-uuid", "event_id header is not a UUID"),
    ],
)
def test_a_bare_record_with_an_unusable_event_id_header_gets_a_reason(header, expected) -> None:
    record = Record(
        topics.ORDERS_SUBMITTED.name, json.dumps(order_document()).encode(), headers=(("event_id", header),)
    )
    result = outcome(record)
    assert isinstance(result, Undecodable) and result.reason == expected


def test_an_integer_too_long_to_convert_is_refused_as_not_json() -> None:
    result = outcome(Record(topics.INVENTORY_ADJUSTMENTS.name, b'{"quantity": ' + b"9" * 5000 + b"}"))
    assert isinstance(result, Undecodable) and result.reason.startswith("not JSON: ")


def test_a_valid_bare_record_with_a_uuid_event_id_header_is_decoded_with_that_id() -> None:
    event_id = uuid.uuid4()
    record = Record(
        topics.ORDERS_SUBMITTED.name,
        json.dumps(order_document()).encode(),
        headers=(("traceparent", None), ("event_id", str(event_id).encode())),
    )
    result = outcome(record)
    assert isinstance(result, Inbound) and result.event_id == event_id


def validated_envelope(field_and_value: tuple[str, Any]) -> bytes:
    """A valid OrderValidated envelope, one of its fields (or its payload's) replaced."""
    document = wrap(validated_order(uuid.uuid4(), "SKU-1")).model_dump(mode="json")
    field, value = field_and_value
    if field in document:
        document[field] = value
    else:
        document["payload"][field] = value
    return json.dumps(document).encode()


payload_fields = ["event_id", "version", "occurred_at", "order_id", "payload", "lines", "total", "currency", "ship_to"]
text_like = st.text(max_size=12) | st.uuids().map(str) | st.integers().map(str) | st.just("2026-12-03T10:00:00+01:00")
near_valid = st.one_of(
    st.tuples(st.sampled_from(payload_fields), json_values | text_like).map(validated_envelope),
    st.tuples(st.sampled_from(list(order_document())), json_values | text_like).map(mutated_order),
    st.builds(lambda: json.dumps(order_document()).encode()),
    st.builds(lambda: validated_envelope(("order_id", str(uuid.uuid4())))),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic=st.sampled_from([topics.ORDERS_SUBMITTED.name, topics.ORDERS_VALIDATED.name, *INBOUND_TOPICS]),
    value=values | near_valid,
    key=st.none() | st.binary(max_size=20),
    heads=headers,
)
def test_the_one_pass_decoding_of_valid_records_agrees_with_the_step_by_step_one(topic, value, key, heads) -> None:
    """Valid records are parsed and validated in one pass; any other record goes step by step for its reason.
    The one pass must accept nothing the step-by-step path refuses, and decode what it accepts the same way."""
    origin = Origin.of(Record(topic, value, key, heads))
    if value is None or len(value) > MAX_BYTES:
        return
    fast = _decode_valid(origin, topics.BY_NAME[topic], value)
    if fast is not None:
        slow = _explained(origin, topics.BY_NAME[topic], value)
        assert isinstance(slow, Inbound)
        assert fast.payload == slow.payload
        # A bare record's envelope is made as it is read: its occurred_at is the time of reading. The one pass keeps
        # the envelope's head (its payload is the typed one), the step-by-step path the whole envelope.
        same_time = {"occurred_at": slow.envelope.occurred_at} if topics.BY_NAME[topic].external else {}
        assert {**head(fast.envelope), **same_time} == head(slow.envelope)
        assert isinstance(fast.envelope, EnvelopeHead)


def head(envelope: EnvelopeHead) -> dict[str, Any]:
    return envelope.model_dump(include=set(EnvelopeHead.model_fields))


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        (topics.ORDERS_VALIDATED.name, validated_envelope(("order_id", str(uuid.uuid4())))),
        (topics.ORDERS_SUBMITTED.name, json.dumps(order_document()).encode()),
    ],
)
def test_a_valid_record_is_decoded_in_one_pass_as_the_step_by_step_path_decodes_it(topic: str, value: bytes) -> None:
    origin = Origin.of(Record(topic, value))
    fast = _decode_valid(origin, topics.BY_NAME[topic], value)
    slow = _explained(origin, topics.BY_NAME[topic], value)
    assert isinstance(fast, Inbound) and isinstance(slow, Inbound)
    assert fast.payload == slow.payload
    read_now = {"occurred_at": None} if topics.BY_NAME[topic].external else {}  # a bare record's: when it was read
    assert {**head(fast.envelope), **read_now} == {**head(slow.envelope), **read_now}


@pytest.mark.parametrize("raw", [b"NaN", b"-Infinity", b'"\\ud800"', b"9" * 5000, b"1e400", b'"caf\\u00e9"'])
@pytest.mark.parametrize("field", ["external_id", "placed_at", "shipping_price", "customer"])
def test_values_json_parsers_disagree_on_are_decoded_as_the_step_by_step_path_decodes_them(raw, field) -> None:
    """Python's json and pydantic's parser differ on NaN, lone surrogates and integers past 4,300 digits: inside an
    otherwise valid order, the one pass accepts such a value only where the step-by-step path does, and alike."""
    value = mutated_order((field, "RAW-VALUE")).replace(b'"RAW-VALUE"', raw)
    origin = Origin.of(Record(topics.ORDERS_SUBMITTED.name, value))
    fast = _decode_valid(origin, topics.ORDERS_SUBMITTED, value)
    slow = _explained(origin, topics.ORDERS_SUBMITTED, value)
    if fast is not None:
        assert isinstance(slow, Inbound) and fast.payload == slow.payload
