from pathlib import Path

from shared import asyncapi
from shared.topics import TOPICS

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_every_topic_is_documented_with_its_payloads() -> None:
    channels = asyncapi.document()["channels"]
    assert {c["address"] for c in channels.values()} == {t.name for t in TOPICS}
    submitted = channels["oms_orders_submitted"]["messages"]["OrderSubmitted"]["payload"]
    assert "shipping_address" in submitted["properties"]


def test_the_checked_in_document_is_generated_from_the_models() -> None:
    assert DOCUMENT.read_text() == asyncapi.render(), "run `make asyncapi` after changing a contract"
