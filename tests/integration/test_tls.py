"""TLS to the brokers and the database, as a deployment off one host runs them: a service whose settings name the CA
that signs their certificates reaches them over TLS, authenticated as before (SCRAM, its database role); a client
that trusts another CA is refused before it says a word. Against the local stack's TLS listener and its PostgreSQL,
which serve a certificate of the stack's own CA (deploy/local/stack/certificates.py); the stack's own clients stay on
loopback plaintext."""

import asyncio
import logging
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError

from deploy.local.stack import certificates, kafka
from oms_kit import Connection
from shared.backbone import db, kafka_access
from shared.backbone.kafka import make_producer
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from tests.local import LOCAL, STACK

pytestmark = pytest.mark.skipif(
    STACK == "containers", reason="the container images' broker and database serve no TLS (the native stack's do)"
)
CA = certificates.Certificates.of(LOCAL).ca


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed neither server's certificate."""
    return certificates.Authority.new("someone else's CA").save(tmp_path_factory.mktemp("other-ca") / "ca.pem")


def over_tls(service: str, ca_file: Path) -> CommonSettings:
    """The service's settings as a deployment's: the brokers' TLS listeners and the database, each with the CA."""
    local = LOCAL.service_settings(service)
    return CommonSettings(
        service=service,
        environment="test",
        kafka_bootstrap=LOCAL.ports.kafka_tls_bootstrap,
        kafka_password=local.kafka_password,
        kafka_ca_file=str(ca_file),
        pg_port=local.pg_port,
        db_password=local.db_password,
        pg_ca_file=str(ca_file),
    )


async def test_records_go_and_come_back_over_the_brokers_tls_listener(stack) -> None:
    # Given a topic of its own on the broker, made over TLS
    access = LOCAL.tls_access(kafka_access.ADMIN, CA)
    assert access.client_options()["security_protocol"] == "SASL_SSL"
    topic = f"oms.test.tls-{uuid.uuid4().hex[:8]}"
    admin = access.admin(request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        # When a record is published and read back over TLS
        producer = access.producer(request_timeout_ms=10_000)
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, b"over TLS", key=b"tls")
        finally:
            await producer.stop()
        consumer = access.consumer(topic, group_id=f"{topic}-reader", auto_offset_reset="earliest")
        await consumer.start()
        try:
            read = await consumer.getone()
        finally:
            await consumer.stop()
        # Then it is the record that was sent, where it was sent
        assert (read.value, read.offset) == (b"over TLS", sent.offset)
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_a_service_given_the_brokers_ca_reaches_them_over_tls_as_its_own_principal(stack) -> None:
    # Given capture's settings with the brokers' TLS listeners and their CA
    settings = over_tls("capture", CA)
    # When its producer starts (as every client of the service: through its principal's options)
    producer = make_producer(settings)
    await producer.start()
    try:
        # Then it knows the brokers by their TLS listeners and the partitions of a topic it writes
        assert {f"{b.host}:{b.port}" for b in producer.client.cluster.brokers()} == set(
            LOCAL.ports.kafka_tls_bootstrap.split(",")
        )
        assert await producer.partitions_for(topics.ORDERS_VALIDATED.name)
    finally:
        await producer.stop()


async def test_a_client_that_trusts_another_ca_is_refused_by_the_brokers(
    stack, other_ca: Path, caplog: pytest.LogCaptureFixture
) -> None:
    producer = make_producer(over_tls("capture", other_ca))
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    # refused for the certificate (a client speaking plaintext to the TLS listener is refused too, otherwise)
    assert any("CERTIFICATE_VERIFY_FAILED" in record.getMessage() for record in caplog.records)


async def test_kafkas_own_tools_reach_the_tls_listener_with_the_properties_the_project_writes(
    stack, tmp_path: Path
) -> None:
    # Given the properties file the project writes for Kafka's command-line tools, for the TLS listener
    properties = tmp_path / "admin-tls.properties"
    properties.write_text(LOCAL.tls_access(kafka_access.ADMIN, CA).properties())
    # When Kafka's own topic tool lists the topics with it
    command = kafka.java_command(
        LOCAL,
        "tools-log4j2.properties",
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        LOCAL.ports.kafka_tls_bootstrap,
        "--command-config",
        str(properties),
        "--list",
    )
    listed = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=120)
    # Then it lists the pipeline's topics
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert topics.ORDERS_SUBMITTED.name in listed.stdout.split()


def kit_environment(ca_file: Path) -> dict[str, str]:
    return {
        "OMS_KAFKA_BOOTSTRAP": LOCAL.ports.kafka_tls_bootstrap,
        "OMS_KAFKA_PRINCIPAL": "warehouses",
        "OMS_KAFKA_PASSWORD": LOCAL.kafka_passwords["warehouses"],
        "OMS_KAFKA_CA_FILE": str(ca_file),
    }


async def test_the_integrators_kit_connects_over_tls_with_the_ca_in_its_environment(stack, other_ca: Path) -> None:
    # Its broker connects (its producer bootstraps: TLS, then SCRAM) with the brokers' CA ...
    broker = Connection.from_env(kit_environment(CA)).broker()
    try:
        await broker.connect()
    finally:
        await broker.stop()
    # ... and not with another
    refused = Connection.from_env(kit_environment(other_ca)).broker()
    try:
        with pytest.raises(KafkaConnectionError):
            await refused.connect()
    finally:
        await refused.stop()


async def test_a_service_given_the_databases_ca_has_every_session_over_tls(stack) -> None:
    settings = over_tls("capture", CA)
    pool = await db.create_pool(settings, min_size=2)
    try:
        async with pool.acquire() as first, pool.acquire() as second:
            for pooled in (first, second):
                row = await pooled.fetchrow("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                assert row is not None
                assert row["ssl"] is True
                assert row["version"] in ("TLSv1.2", "TLSv1.3")
    finally:
        await pool.close()
    # The listener's connection too (a connection of its own, outside the pool)
    conn = await db.connect(settings)
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    finally:
        await conn.close()


async def test_without_a_ca_a_service_speaks_plaintext_even_to_a_server_that_offers_tls(stack) -> None:
    conn = await db.connect(LOCAL.service_settings("capture"))
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is False
    finally:
        await conn.close()


async def test_a_client_that_trusts_another_ca_is_refused_by_the_database(stack, other_ca: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await db.connect(over_tls("capture", other_ca))
