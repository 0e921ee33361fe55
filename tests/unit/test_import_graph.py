"""The layers stay apart: contracts import nothing else of the project, the backbone no business code, and
no service imports another (they meet only through the contracts, over Kafka)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "app.py").exists())


def imports(package: Path) -> dict[str, set[str]]:
    """Per module of the package: the project modules it imports (absolute names)."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(REPO))] = {n for n in names if n.split(".")[0] in ("shared", "services", "deploy")}
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("shared/contracts", ("shared.backbone", "shared.reference", "services", "deploy")),
        ("shared/backbone", ("shared.reference", "services", "deploy")),
        ("shared/reference", ("services", "deploy")),
    ],
)
def test_a_shared_layer_imports_nothing_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = {
        module: sorted(n for n in names if n.startswith(forbidden))
        for module, names in imports(REPO / package).items()
        if any(n.startswith(forbidden) for n in names)
    }
    assert wrong == {}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = tuple(f"services.{s}" for s in SERVICES if s != service)
    wrong = {
        m: sorted(n for n in names if n.startswith(others)) for m, names in imports(REPO / "services" / service).items()
    }
    assert {m: n for m, n in wrong.items() if n} == {}
