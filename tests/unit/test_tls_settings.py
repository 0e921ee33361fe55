"""TLS in the settings: a service given the CA of its brokers or its database speaks TLS to them and checks their
names; production refuses to reach either off its host in plaintext unless told the network is the deployment's own."""

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.local.stack import certificates
from shared.backbone import db, kafka_access, tls
from shared.backbone.settings import CommonSettings
from tests.production import as_production


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return certificates.Authority.new("a test CA").save(tmp_path / "ca.pem")


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    as_production(monkeypatch)
    return monkeypatch


def test_production_refuses_brokers_off_its_host_without_their_ca(production: pytest.MonkeyPatch) -> None:
    production.setenv("OMS_KAFKA_BOOTSTRAP", "127.0.0.1:9092,kafka-1.internal:9093")
    with pytest.raises(ValidationError, match="OMS_KAFKA_CA_FILE"):
        CommonSettings(service="capture")


def test_production_refuses_a_database_off_its_host_without_its_ca(production: pytest.MonkeyPatch) -> None:
    production.setenv("OMS_PG_HOST", "oms-db-rw")
    with pytest.raises(ValidationError, match="OMS_PG_CA_FILE"):
        CommonSettings(service="capture")


def test_production_reaches_them_off_its_host_with_their_cas_or_on_a_network_of_its_own(
    production: pytest.MonkeyPatch, ca_file: Path
) -> None:
    production.setenv("OMS_KAFKA_BOOTSTRAP", "oms-kafka-kafka-bootstrap:9093")
    production.setenv("OMS_PG_HOST", "oms-db-rw")
    production.setenv("OMS_KAFKA_CA_FILE", str(ca_file))
    production.setenv("OMS_PG_CA_FILE", str(ca_file))
    settings = CommonSettings(service="capture")
    assert (settings.kafka_ca_file, settings.pg_ca_file) == (str(ca_file), str(ca_file))
    production.delenv("OMS_KAFKA_CA_FILE")
    production.delenv("OMS_PG_CA_FILE")
    production.setenv("OMS_TRUSTED_NETWORK", "true")
    assert CommonSettings(service="capture").trusted_network


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_and_tests_may_reach_anything_in_plaintext(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("OMS_ENVIRONMENT", environment)
    settings = CommonSettings(service="capture", kafka_bootstrap="kafka:9092", pg_host="postgres")
    assert kafka_access.of_service(settings).client_options()["security_protocol"] == "SASL_PLAINTEXT"
    assert db.session_tls(settings) is False


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("localhost", True), ("[::1]", True), ("::1", True),
     ("10.0.0.5", False), ("oms-db-rw", False), ("localhost.example.org", False)],
)  # fmt: skip
def test_only_this_hosts_loopback_counts_as_loopback(host: str, local: bool) -> None:
    assert tls.loopback(host) is local


def test_the_hosts_of_a_bootstrap_list() -> None:
    assert list(tls.hosts("a:9092, [::1]:9093,b.example:19092")) == ["a", "[::1]", "b.example"]


def test_a_client_given_a_ca_speaks_tls_trusting_that_ca_alone_and_checks_the_servers_name(ca_file: Path) -> None:
    settings = CommonSettings(
        service="capture", environment="test", kafka_ca_file=str(ca_file), pg_ca_file=str(ca_file)
    )
    access = kafka_access.of_service(settings)
    options = access.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    for context in (options["ssl_context"], db.session_tls(settings)):
        assert isinstance(context, ssl.SSLContext)
        assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "a test CA"),),)]
    # Kafka's own tools and librdkafka are told the same
    assert "security.protocol=SASL_SSL\n" in access.properties()
    assert f"ssl.truststore.location={ca_file}\n" in access.properties()
    assert access.librdkafka_config()["ssl.ca.location"] == str(ca_file)
    assert access.librdkafka_config()["security.protocol"] == "SASL_SSL"
