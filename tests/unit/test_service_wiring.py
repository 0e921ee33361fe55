"""A service named in the registry is wired everywhere it must be, or this fails and says where: its package
with the one wiring point, its schema's migrations, its HTTP port, Prometheus scraping it, the local stack
starting it, and topics it reads or writes. (Roles, schemas, principals, ACLs, dead-letter topics and the
AsyncAPI document are derived from the registry and need nothing.)"""

import ast
from pathlib import Path

import pytest

from deploy.local import processes
from shared.backbone import ports
from shared.contracts import topics
from tests.local import LOCAL

REPO = Path(__file__).resolve().parents[2]


def functions(path: Path) -> set[str]:
    return {node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("service", topics.SERVICES)
def test_a_registered_service_is_wired(service: str) -> None:
    package = REPO / "services" / service
    assert {"create_app", "main"} <= functions(package / "app.py"), f"services/{service}/app.py: create_app, main"
    assert (package / "__main__.py").exists(), f"services/{service}/__main__.py runs it"
    assert list((package / "migrations").glob("0*.sql")), f"services/{service}/migrations/ holds its schema"
    assert service in ports.HTTP_BASE, f"shared/backbone/ports.py: an HTTP port for {service}"
    scrape = f'job_name: oms-{service}\n    static_configs:\n      - targets: ["127.0.0.1:{ports.HTTP_BASE[service]}"]'
    assert scrape in (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text(), "Prometheus scrapes it"
    assert service in {p.name for p in processes.everything(LOCAL)}, "deploy/local/processes.py starts every service"
    assert topics.inputs(service) or [t for t in topics.outputs(service) if t in topics.BUSINESS_TOPICS], (
        f"shared/contracts/topics.py: {service} reads or writes no topic"
    )


def test_nothing_is_wired_for_a_service_the_registry_does_not_name() -> None:
    packages = {p.name for p in (REPO / "services").iterdir() if (p / "app.py").exists()}
    assert packages == set(topics.SERVICES)
    assert set(ports.HTTP_BASE) == set(topics.SERVICES)
