"""Where the local stack listens: fixed base ports shifted by OMS_PORT_OFFSET, so that two stacks (two
checkouts, or a developer's and a test run's) can run side by side; each port can also be set alone.

OMS_KAFKA_BROKERS=3 makes Kafka a cluster of three KRaft nodes: node n listens at the Kafka port + 2(n-1) and its
controller at the controller port + 2(n-1) (19092/19093, 19094/19095, 19096/19097 before the offset, the ports the
compose stack publishes its brokers on), so it stays inside the stack's offset window. Each node also has a TLS
listener (SASL_SSL, the stack's own CA: deploy/local/stack/certificates.py) at the TLS port + 2(n-1), for the tests
of the clients' TLS; the pipeline's own clients stay on loopback plaintext.

Read from the environment when `StackPorts.from_env` is called, never at import: the services' settings take
their defaults from it, the local tools read it once (deploy/local/settings.py) and pass it down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

HOST = "127.0.0.1"
KAFKA_BASE = 19092
KAFKA_CONTROLLER_BASE = 19093
KAFKA_TLS_BASE = 19192
# A cluster's next node listens this many ports above the previous one (its client and controller ports).
KAFKA_NODE_STEP = 2
# One node (the default: quickest to start), or a cluster that survives the loss of one.
KAFKA_BROKER_COUNTS = (1, 3)
POSTGRES_BASE = 15432
SMTP_BASE = 11025
PROMETHEUS_BASE = 9090
# Before the offset: deploy/prometheus/prometheus.yml names these, and its local copy shifts them.
HTTP_BASE = {
    "capture": 8080,
    "allocation": 8081,
    "fulfillment": 8082,
    "notifications": 8083,
    "returns": 8084,
    "kpis": 8085,
}


@dataclass(frozen=True)
class StackPorts:
    offset: int
    kafka: int
    kafka_controller: int
    kafka_tls: int
    kafka_brokers: int  # KRaft nodes (broker and controller each): 1, or 3 for a cluster
    postgres: int
    smtp: int
    prometheus: int
    http: Mapping[str, int]  # service -> port of its HTTP surface
    # What every Kafka client connects to: OMS_KAFKA_BOOTSTRAP, else every local broker's listener.
    kafka_bootstrap: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackPorts:
        env = os.environ if env is None else env
        offset = int(env.get("OMS_PORT_OFFSET") or 0)

        def port(variable: str, base: int) -> int:
            return int(env.get(variable) or base + offset)

        kafka = port("OMS_KAFKA_PORT", KAFKA_BASE)
        brokers = int(env.get("OMS_KAFKA_BROKERS") or 1)
        if brokers not in KAFKA_BROKER_COUNTS:
            raise ValueError(f"OMS_KAFKA_BROKERS={brokers}: the local stack runs 1 Kafka broker or a cluster of 3")
        return cls(
            offset=offset,
            kafka=kafka,
            kafka_controller=port("OMS_KAFKA_CONTROLLER_PORT", KAFKA_CONTROLLER_BASE),
            kafka_tls=port("OMS_KAFKA_TLS_PORT", KAFKA_TLS_BASE),
            kafka_brokers=brokers,
            postgres=port("OMS_PG_PORT", POSTGRES_BASE),
            smtp=port("OMS_SMTP_PORT", SMTP_BASE),
            prometheus=port("OMS_PROMETHEUS_PORT", PROMETHEUS_BASE),
            http={name: port(f"OMS_{name.upper()}_HTTP_PORT", base) for name, base in HTTP_BASE.items()},
            kafka_bootstrap=env.get("OMS_KAFKA_BOOTSTRAP")
            or ",".join(f"{HOST}:{kafka + KAFKA_NODE_STEP * n}" for n in range(brokers)),
        )

    def kafka_node_ports(self, node_id: int) -> tuple[int, int]:
        """The client and controller ports of KRaft node `node_id` (1, 2, 3)."""
        step = KAFKA_NODE_STEP * (node_id - 1)
        return self.kafka + step, self.kafka_controller + step

    def kafka_tls_port(self, node_id: int) -> int:
        """The TLS listener's port of KRaft node `node_id`."""
        return self.kafka_tls + KAFKA_NODE_STEP * (node_id - 1)

    @property
    def kafka_tls_bootstrap(self) -> str:
        """Every local broker's TLS listener."""
        return ",".join(f"{HOST}:{self.kafka_tls_port(n)}" for n in range(1, self.kafka_brokers + 1))
