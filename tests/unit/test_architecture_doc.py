"""docs/architecture.md shows the topology as the registry draws it today."""

from pathlib import Path

from shared.contracts import topology

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_the_architecture_picture_is_the_registrys() -> None:
    text = DOCUMENT.read_text()
    assert f"```mermaid\n{topology.mermaid()}```" in text
    assert topology.embed(text) == text, "run `make docs` after changing the registry"
