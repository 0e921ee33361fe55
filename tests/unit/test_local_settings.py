"""The local stack's settings are read from one place when a tool asks for them (never when a module is imported)
and passed down: the stack, the clients of its broker, the services and the simulator it starts all use the same
addresses, and each service the passwords the stack gave its database role and Kafka principal."""

import pytest

from deploy.bench.run import more_instances
from deploy.local import processes
from deploy.local.settings import LocalStack
from deploy.local.supervisor import BEHIND_THE_ORDER_PATH
from services.capture.settings import CaptureSettings
from services.notifications.settings import NotificationSettings
from shared.backbone.ports import KAFKA_BASE, StackPorts
from shared.backbone.settings import CommonSettings
from shared.contracts import asyncapi

# What the stack reads, so that a test can start from nothing set (the session itself runs with an offset).
STACK_VARIABLES = [
    "OMS_PORT_OFFSET",
    "OMS_KAFKA_PORT",
    "OMS_KAFKA_BOOTSTRAP",
    "OMS_KAFKA_BROKERS",
    "OMS_PG_PORT",
    "OMS_SMTP_PORT",
    "OMS_CAPTURE_HTTP_PORT",
    "OMS_HTTP_PORT",
    "OMS_DB_PASSWORD",
    "OMS_KAFKA_PASSWORD",
]


@pytest.fixture
def no_stack_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in STACK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_the_port_offset_counts_from_when_the_settings_are_read_not_from_when_modules_were_imported(
    no_stack_variables: pytest.MonkeyPatch,
) -> None:
    # given every module imported already (as in any tool), when the offset is set only now
    no_stack_variables.setenv("OMS_PORT_OFFSET", "700")

    # then the tools' settings follow it
    local = LocalStack.from_env()
    assert (local.ports.kafka, local.ports.postgres, local.ports.smtp, local.ports.http["capture"]) == (
        19792,
        16132,
        11725,
        8780,
    )
    assert local.kafka_bootstrap == "127.0.0.1:19792"
    # and so do the services' defaults
    capture = CommonSettings(service="capture", environment="test")
    assert (capture.kafka_bootstrap, capture.pg_port, capture.http_port) == ("127.0.0.1:19792", 16132, 8780)
    assert NotificationSettings(environment="test").smtp_port == 11725


def test_every_client_of_the_stack_connects_to_the_kafka_address_set_in_oms_kafka_bootstrap() -> None:
    # given a Kafka address set apart from the broker's port
    local = LocalStack.from_env({"OMS_PORT_OFFSET": "700", "OMS_KAFKA_BOOTSTRAP": "localhost:19792"})

    # then the broker still listens where the offset puts it
    assert local.ports.kafka == 19792
    # and every client goes to the address: the stack's own admin calls, `oms`, the demo and the tests (admin),
    # the simulator (an outside party), Kafka's command-line tools, and the services the stack starts
    assert local.access().client_options()["bootstrap_servers"] == "localhost:19792"
    assert local.access("warehouses").client_options()["bootstrap_servers"] == "localhost:19792"
    assert "bootstrap.servers=localhost:19792\n" in local.access("carriers").properties()
    assert processes.service(local, "capture").environment()["OMS_KAFKA_BOOTSTRAP"] == "localhost:19792"


def test_a_service_started_by_the_stack_is_handed_its_addresses_and_the_passwords_its_role_and_principal_got(
    no_stack_variables: pytest.MonkeyPatch,
) -> None:
    # given the stack's settings, read from other variables than this process has
    local = LocalStack.from_env(
        {
            "OMS_PORT_OFFSET": "700",
            "OMS_CAPTURE_DB_PASSWORD": "capture-db-secret",
            "OMS_KAFKA_CAPTURE_PASSWORD": "capture-kafka-secret",
        }
    )

    # when capture's process environment is made
    environment = processes.service(local, "capture").environment()

    # then capture's settings, read from it, are the stack's: its addresses, its role's and principal's passwords
    for variable, value in environment.items():
        if variable.startswith("OMS_"):
            no_stack_variables.setenv(variable, value)
    capture = CaptureSettings()
    assert (capture.kafka_bootstrap, capture.pg_port, capture.http_port) == ("127.0.0.1:19792", 16132, 8780)
    assert (capture.db_password, capture.kafka_password) == ("capture-db-secret", "capture-kafka-secret")
    assert NotificationSettings().smtp_port == 11725


def test_the_simulator_is_handed_the_same_stack_settings_and_no_service_password() -> None:
    local = LocalStack.from_env(
        {"OMS_PORT_OFFSET": "700", "OMS_STATE_DIR": "/tmp/elsewhere", "OMS_KAFKA_WAREHOUSES_PASSWORD": "w-secret"}
    )
    simulator = next(p for p in processes.everything(local) if p.name == "simulator")
    environment = simulator.environment()
    assert LocalStack.from_env(environment) == local
    assert "OMS_DB_PASSWORD" not in environment and "OMS_KAFKA_PASSWORD" not in environment


def test_the_asyncapi_document_names_the_local_broker_at_its_default_port() -> None:
    # The contracts import nothing of the backbone, so the document names the port itself: kept in step here.
    assert asyncapi.document()["servers"]["local"]["host"] == StackPorts.from_env({}).kafka_bootstrap
    assert StackPorts.from_env({}).kafka == KAFKA_BASE


def test_oms_reads_a_services_dead_letters_as_its_role_in_a_shell_without_oms_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an operator's shell that never set OMS_ENVIRONMENT (production settings refuse development passwords)
    monkeypatch.delenv("OMS_ENVIRONMENT", raising=False)
    local = LocalStack.from_env({"OMS_CAPTURE_DB_PASSWORD": "capture-db-secret"})

    # when `oms dlq` connects as a service, then it does with the password the stack gave that service's role
    capture, allocation = local.service_settings("capture"), local.service_settings("allocation")
    assert (capture.db_role, capture.db_password) == ("capture", "capture-db-secret")
    assert (allocation.db_role, allocation.db_password) == ("allocation", "dev-allocation-password")


def test_the_order_path_goes_first_on_the_machine_and_what_follows_it_runs_behind() -> None:
    local = LocalStack.from_env({"OMS_STATE_DIR": "/tmp/elsewhere"})
    niceness = {p.name: p.niceness for p in [*processes.everything(local), *more_instances(local, 2)]}
    assert {name for name, value in niceness.items() if value == 0} == {
        "capture", "allocation", "fulfillment", "capture-2", "allocation-2", "fulfillment-2", "simulator",
    }  # fmt: skip
    behind = {name for name, value in niceness.items() if value == BEHIND_THE_ORDER_PATH}
    assert behind == {"notifications", "returns", "kpis", "notifications-2", "returns-2", "kpis-2"}
    assert BEHIND_THE_ORDER_PATH > 0
