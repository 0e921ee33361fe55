"""Who may do what on Kafka: one SCRAM principal per service and per outside party (channel adapters, the
catalogue, warehouses, carriers, the payment provider, purchasing, dropship suppliers), each allowed exactly what the
topic registry says: write the topics it is the writer of, read the topics it is a reader of, in its own consumer
group(s). Nothing else is allowed (the broker denies what no ACL grants); the stack's `admin` is the only super user.

The grants are data, derived here and applied to the broker by deploy/local/stack/kafka_setup.py; every Kafka
client of the project connects through `Access.client_options` (the tools' clients are built by `Access`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared.backbone import partitioning
from shared.backbone.settings import CommonSettings
from shared.backbone.tls import verifying
from shared.contracts.topics import INTAKE_QUEUE, ORDER_PATH, SERVICES, TOPICS, Topic, measures_the_order_path

ADMIN = "admin"
OUTSIDE_PARTIES = (
    "channel-adapters",
    "catalogue",
    "warehouses",
    "carriers",
    "payment-provider",
    "purchasing",
    "suppliers",
)
PRINCIPALS = (*SERVICES, *OUTSIDE_PARTIES)
MECHANISM = "SCRAM-SHA-256"


def principal(registry_name: str) -> str:
    """The principal of a writer or reader as the registry names it ("channel adapters" -> channel-adapters)."""
    return registry_name.replace(" ", "-")


def consumer_group(name: str) -> str:
    """A service's consumer group; outside parties may use any group starting with their name."""
    return f"oms-{name}" if name in SERVICES else name


@dataclass(frozen=True)
class Grant:
    principal: str
    resource: str  # TOPIC or GROUP
    pattern: str  # LITERAL or PREFIXED
    name: str
    operation: str  # READ or WRITE (each implies DESCRIBE), or DESCRIBE alone

    def spec(self) -> str:
        return f"allow User:{self.principal} {self.resource} {self.pattern} {self.name} {self.operation}"


def writes(name: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if principal(t.writer) == name)


def reads(name: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if name in {principal(r) for r in t.readers})


def grants(name: str) -> list[Grant]:
    """Everything one principal may do; nothing more."""
    found = [Grant(name, "TOPIC", "LITERAL", t.name, "WRITE") for t in writes(name)]
    found += [Grant(name, "TOPIC", "LITERAL", t.name, "READ") for t in reads(name)]
    if reads(name):
        pattern = "LITERAL" if name in SERVICES else "PREFIXED"
        found.append(Grant(name, "GROUP", pattern, consumer_group(name), "READ"))
    if name in SERVICES and reads(name):
        found += watching_the_order_path(name)
    return found


def watching_the_order_path(name: str) -> list[Grant]:
    """What a service's watch of the order path's backlog needs (shared/backbone/peak.py): the reports on the intake
    queue's topic, READ on that topic alone (read in no group); and for capture, which measures the backlog, the
    committed offsets of the path's groups and the end offsets of their topics, both DESCRIBE, which reads no record
    and joins no group. What the service reads or joins already is not granted twice."""
    found = [Grant(name, "TOPIC", "LITERAL", INTAKE_QUEUE.name, "READ")]
    if not measures_the_order_path(name):
        return found
    own = {t.name for t in reads(name)}
    found += [Grant(name, "GROUP", "LITERAL", consumer_group(r), "DESCRIBE") for r in ORDER_PATH if r != name]
    found += [Grant(name, "TOPIC", "LITERAL", t.name, "DESCRIBE") for t in ORDER_PATH.values() if t.name not in own]
    return found


def all_grants() -> list[Grant]:
    return [grant for name in PRINCIPALS for grant in grants(name)]


@dataclass(frozen=True)
class Access:
    """How one principal reaches the brokers."""

    bootstrap: str
    principal: str
    password: str
    mechanism: str = MECHANISM
    # The CA certificate (PEM file) that signs the brokers' certificates: TLS (SASL_SSL), the brokers' names checked.
    ca_file: str = ""

    @property
    def protocol(self) -> str:
        return "SASL_SSL" if self.ca_file else "SASL_PLAINTEXT"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.principal,
            "sasl_plain_password": self.password,
            **({"ssl_context": verifying(self.ca_file)} if self.ca_file else {}),
        }

    def properties(self) -> str:
        """The same as a Java client properties file, for Kafka's own command-line tools."""
        jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{self.principal}"'
        trust = f"ssl.truststore.type=PEM\nssl.truststore.location={self.ca_file}\n" if self.ca_file else ""
        return (
            f"bootstrap.servers={self.bootstrap}\n"
            f"security.protocol={self.protocol}\n"
            f"{trust}"
            f"sasl.mechanism={self.mechanism}\n"
            f'sasl.jaas.config={jaas} password="{self.password}";\n'
        )

    def librdkafka_config(self) -> dict[str, str]:
        """The same for a librdkafka client (confluent-kafka: the bench's load generator)."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.protocol,
            "sasl.mechanisms": self.mechanism,
            "sasl.username": self.principal,
            "sasl.password": self.password,
            # The Java client's partition for a key (librdkafka's default hashes keys with CRC32).
            "partitioner": "murmur2_random",
            **({"ssl.ca.location": self.ca_file} if self.ca_file else {}),
        }

    # The clients of the tools, the simulator and the tests (the services' own producer is kafka.make_producer).

    def producer(self, **options: Any) -> AIOKafkaProducer:
        """Idempotent (so acks=all): a retry never writes a record twice."""
        return AIOKafkaProducer(
            **self.client_options(),
            **{"enable_idempotence": True, "linger_ms": 5, "partitioner": partitioning.by_key, **options},
        )

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*topics, **self.client_options(), **options)

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self.client_options(), **options)


def of_service(settings: CommonSettings) -> Access:
    """A service's own principal: its name, with OMS_KAFKA_PASSWORD (OMS_KAFKA_SCRAM_MECHANISM, OMS_KAFKA_CA_FILE)."""
    return Access(
        settings.kafka_bootstrap,
        settings.service,
        settings.kafka_password,
        settings.kafka_scram_mechanism,
        settings.kafka_ca_file,
    )
