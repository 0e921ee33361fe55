from pathlib import Path

from shared.contracts import asyncapi
from shared.contracts.topics import TOPICS

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_every_topic_is_documented_with_its_payloads() -> None:
    channels = asyncapi.document()["channels"]
    assert {c["address"] for c in channels.values()} == {t.name for t in TOPICS}
    submitted = channels["oms_orders_submitted"]["messages"]["OrderSubmitted"]["payload"]
    assert "shipping_address" in submitted["properties"]


def test_the_checked_in_document_is_generated_from_the_models() -> None:
    assert DOCUMENT.read_text() == asyncapi.render(), "run `make docs` after changing a contract"


def test_every_reader_of_a_topic_has_a_receive_operation_and_every_writer_a_send() -> None:
    operations = asyncapi.document()["operations"].values()
    sent = {(op["channel"]["$ref"], op["summary"]) for op in operations if op["action"] == "send"}
    received = {(op["channel"]["$ref"], op["summary"]) for op in operations if op["action"] == "receive"}
    for topic in TOPICS:
        ref = f"#/channels/{topic.name.replace('.', '_').replace('-', '_')}"
        assert (ref, f"{topic.writer} publishes") in sent
        assert {summary for channel, summary in received if channel == ref} == {f"{r} reads" for r in topic.readers}
