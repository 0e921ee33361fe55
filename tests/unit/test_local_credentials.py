"""A service the local stack starts gets the passwords the stack gave its database role and Kafka principal,
from the one place both read them (OMS_<SERVICE>_DB_PASSWORD, OMS_KAFKA_<SERVICE>_PASSWORD, else the
development ones)."""

import pytest

from deploy.local import processes, stack
from shared.backbone import kafka_access


def test_a_service_process_gets_the_passwords_its_role_and_principal_were_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_CAPTURE_DB_PASSWORD", "capture-db-secret")
    monkeypatch.setenv("OMS_KAFKA_CAPTURE_PASSWORD", "capture-kafka-secret")
    given = processes.service("capture").credentials()
    assert given == {"OMS_DB_PASSWORD": "capture-db-secret", "OMS_KAFKA_PASSWORD": "capture-kafka-secret"}
    assert stack.db_password("capture") == "capture-db-secret"
    assert kafka_access.local("capture").password == "capture-kafka-secret"


def test_the_simulator_gets_no_service_passwords() -> None:
    simulator = next(p for p in processes.everything() if p.name == "simulator")
    assert simulator.credentials() == {}
