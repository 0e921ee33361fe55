"""Where the local stack listens. Fixed defaults shifted by OMS_PORT_OFFSET, so that two stacks (two
checkouts, or a developer's and a test run's) can run side by side; each port can also be set alone."""

from __future__ import annotations

import os

OFFSET = int(os.environ.get("OMS_PORT_OFFSET", "0"))


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable, default + OFFSET))


KAFKA = _port("OMS_KAFKA_PORT", 19092)
KAFKA_CONTROLLER = _port("OMS_KAFKA_CONTROLLER_PORT", 19093)
POSTGRES = _port("OMS_PG_PORT", 15432)
SMTP = _port("OMS_SMTP_PORT", 11025)
KAFKA_BOOTSTRAP = os.environ.get("OMS_KAFKA_BOOTSTRAP", f"127.0.0.1:{KAFKA}")
# Before the offset: deploy/prometheus/prometheus.yml names these, and its local copy shifts them.
HTTP_BASE = {"capture": 8080, "allocation": 8081, "fulfillment": 8082, "notifications": 8083}
HTTP = {name: _port(f"OMS_{name.upper()}_HTTP_PORT", base) for name, base in HTTP_BASE.items()}
PROMETHEUS = _port("OMS_PROMETHEUS_PORT", 9090)
