"""The decoding probe (deploy/bench/decoding.py): what it times and how it reports it."""

import json

from deploy.bench.decoding import Cost, cost, read_by_services, table
from shared.contracts import topics
from tests.factories import Record, order_document


def test_records_are_timed_as_decoded_and_those_that_do_not_decode_are_counted_apart() -> None:
    valid = json.dumps(order_document()).encode()
    records = [Record(topics.ORDERS_SUBMITTED.name, valid, offset=n) for n in range(3)]
    records.append(Record(topics.ORDERS_SUBMITTED.name, b"{not json", offset=3))
    measured = cost(topics.ORDERS_SUBMITTED.name, records, passes=2, max_bytes=1_000_000)
    assert (measured.records, measured.undecodable) == (4, 1)
    assert measured.mean_bytes == (3 * len(valid) + len(b"{not json")) / 4
    assert measured.seconds > 0


def test_the_table_leaves_out_topics_with_no_records() -> None:
    report = table([Cost("oms.a", 10, 0, 900.0, 21.5e-6), Cost("oms.b", 0, 0, 0.0, 0.0)], passes=5)
    assert "| oms.a | 10 | 900 | 21.5 | 0 |" in report
    assert "oms.b" not in report


def test_the_probe_reads_the_topics_the_services_read_on_an_order_s_way() -> None:
    read = read_by_services()
    for topic in (topics.ORDERS_SUBMITTED, topics.ORDERS_VALIDATED, topics.PICK_TASKS, topics.FULFILLMENT_EVENTS):
        assert topic.name in read
