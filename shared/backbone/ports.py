"""Where the local stack listens: fixed base ports shifted by OMS_PORT_OFFSET, so that two stacks (two
checkouts, or a developer's and a test run's) can run side by side; each port can also be set alone.

Read from the environment when `StackPorts.from_env` is called, never at import: the services' settings take
their defaults from it, the local tools read it once (deploy/local/settings.py) and pass it down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

HOST = "127.0.0.1"
KAFKA_BASE = 19092
KAFKA_CONTROLLER_BASE = 19093
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
    postgres: int
    smtp: int
    prometheus: int
    http: Mapping[str, int]  # service -> port of its HTTP surface
    # What every Kafka client connects to: OMS_KAFKA_BOOTSTRAP, else the local broker's listener.
    kafka_bootstrap: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackPorts:
        env = os.environ if env is None else env
        offset = int(env.get("OMS_PORT_OFFSET") or 0)

        def port(variable: str, base: int) -> int:
            return int(env.get(variable) or base + offset)

        kafka = port("OMS_KAFKA_PORT", KAFKA_BASE)
        return cls(
            offset=offset,
            kafka=kafka,
            kafka_controller=port("OMS_KAFKA_CONTROLLER_PORT", KAFKA_CONTROLLER_BASE),
            postgres=port("OMS_PG_PORT", POSTGRES_BASE),
            smtp=port("OMS_SMTP_PORT", SMTP_BASE),
            prometheus=port("OMS_PROMETHEUS_PORT", PROMETHEUS_BASE),
            http={name: port(f"OMS_{name.upper()}_HTTP_PORT", base) for name, base in HTTP_BASE.items()},
            kafka_bootstrap=env.get("OMS_KAFKA_BOOTSTRAP") or f"{HOST}:{kafka}",
        )
