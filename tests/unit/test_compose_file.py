"""The compose stack follows the registry and the native stack: every service runs as its own compose service
under its port and its own credentials, Prometheus scrapes each one, the brokers form a cluster of three, and
nothing is published beyond 127.0.0.1."""

from typing import Any

import yaml

from deploy.containers.compose import COMPOSE_FILE, RUNNING, broker_ports, compose_stack
from deploy.local.settings import REPO
from shared.backbone.ports import HTTP_BASE
from shared.contracts.topics import SERVICES

PROMETHEUS_CONFIG = REPO / "deploy" / "containers" / "prometheus" / "prometheus.yml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # type: ignore[no-any-return]


def test_every_registered_service_runs_as_itself_on_its_port_with_its_own_credentials() -> None:
    services = _compose()["services"]
    for name in SERVICES:
        service = services[name]
        env = service["environment"]
        assert service["command"] == [name]
        assert env["OMS_HTTP_PORT"] == str(HTTP_BASE[name])
        assert f"OMS_KAFKA_{name.upper()}_PASSWORD" in env["OMS_KAFKA_PASSWORD"]
        assert f"OMS_{name.upper()}_DB_PASSWORD" in env["OMS_DB_PASSWORD"]
        assert service["read_only"] is True
    assert set(RUNNING) >= set(SERVICES)


def test_prometheus_scrapes_every_instance_of_every_service_by_name() -> None:
    jobs = {
        job["job_name"]: job["dns_sd_configs"][0]
        for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    assert jobs == {
        f"oms-{name}": {"names": [name], "type": "A", "port": HTTP_BASE[name], "refresh_interval": "5s"}
        for name in SERVICES
    }


def test_three_brokers_vote_and_replicate_three_ways() -> None:
    services = _compose()["services"]
    brokers = [services[f"kafka-{n}"] for n in (1, 2, 3)]
    assert {b["environment"]["KAFKA_NODE_ID"] for b in brokers} == {"1", "2", "3"}
    assert {b["environment"]["KAFKA_VOTERS"] for b in brokers} == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert {b["environment"]["KAFKA_REPLICATION"] for b in brokers} == {"3"}


def test_published_ports_are_loopback_only() -> None:
    published = [port for service in _compose()["services"].values() for port in service.get("ports", [])]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_the_tools_reach_the_three_brokers_at_the_shifted_kafka_port_plus_two_and_four() -> None:
    local = compose_stack({"OMS_PORT_OFFSET": "300", "OMS_STATE_DIR": "/tmp/oms-state"})
    assert broker_ports(local) == [19392, 19394, 19396]
    assert local.kafka_bootstrap == "127.0.0.1:19392,127.0.0.1:19394,127.0.0.1:19396"
    assert str(local.state) == "/tmp/oms-state/compose"


def test_every_container_of_the_project_runs_on_a_read_only_root_filesystem() -> None:
    ours = {name: s for name, s in _compose()["services"].items() if "grafana" not in s.get("profiles", [])}
    assert {name for name, s in ours.items() if s.get("read_only") is not True} == set()
