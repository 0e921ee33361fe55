"""Where the brokers are and who you are, and a FastStream broker set up so that nothing is lost or doubled.

FastStream's own defaults suit a demo, not an order flow: a producer acknowledged by the leader alone and
without idempotence (a leader failover can lose a record, a retry can write it twice), topics created by a
typo, consumers that commit before the handler ran (a crash loses the record) and that start at the end of a
topic they have never read (everything released before the first start is never seen). The kit sets each of
these, here and in the subscribers it makes."""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from faststream.kafka import KafkaBroker
from faststream.security import SASLScram256, SASLScram512

from shared.backbone.closed_connections import guard_closed_connections
from shared.backbone.tls import verifying

Mechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]

# What every producer of the kit does: wait for every in-sync replica, never write a retried record twice, and
# batch for a few milliseconds; no topic comes into being because a name was mistyped.
PRODUCER_OPTIONS: Mapping[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "allow_auto_create_topics": False,
    # FastStream logs every message received and processed; at INFO that is two lines per pick task.
    "log_level": logging.DEBUG,
}
# What every consumer of the kit does: start from the beginning of what it has never read, and commit only what
# the kit acknowledged (after the handler) rather than on a timer.
CONSUMER_OPTIONS: Mapping[str, Any] = {"auto_offset_reset": "earliest"}


@dataclass(frozen=True)
class Connection:
    """The bootstrap servers and your principal (the OMS operator gives you both)."""

    bootstrap: str
    principal: str
    password: str = field(repr=False)
    mechanism: Mechanism = "SCRAM-SHA-256"
    # TLS to the brokers (SASL_SSL) when given; loopback development stacks go without.
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Connection:
        """OMS_KAFKA_BOOTSTRAP, OMS_KAFKA_PRINCIPAL, OMS_KAFKA_PASSWORD; optionally OMS_KAFKA_SCRAM_MECHANISM, and
        OMS_KAFKA_CA_FILE, the CA certificate (PEM) of brokers reached over TLS (their names are checked)."""
        env = os.environ if env is None else env
        missing = [
            name for name in ("OMS_KAFKA_BOOTSTRAP", "OMS_KAFKA_PRINCIPAL", "OMS_KAFKA_PASSWORD") if not env.get(name)
        ]
        if missing:
            raise ValueError(f"set {', '.join(missing)}")
        mechanism = env.get("OMS_KAFKA_SCRAM_MECHANISM", "SCRAM-SHA-256")
        if mechanism not in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ValueError(f"OMS_KAFKA_SCRAM_MECHANISM {mechanism!r}: SCRAM-SHA-256 or SCRAM-SHA-512")
        ca_file = env.get("OMS_KAFKA_CA_FILE")
        return cls(
            env["OMS_KAFKA_BOOTSTRAP"],
            env["OMS_KAFKA_PRINCIPAL"],
            env["OMS_KAFKA_PASSWORD"],
            mechanism,  # type: ignore[arg-type]
            verifying(ca_file) if ca_file else None,
        )

    def broker(self, **options: Any) -> KafkaBroker:
        """A broker with the kit's producer settings; `options` go to FastStream's KafkaBroker as they are.
        On uvloop, a request written to a connection the broker closed would stop the client for good (see
        shared.backbone.closed_connections): the kit's clients reconnect instead, as the services' do."""
        guard_closed_connections()
        scram = SASLScram256 if self.mechanism == "SCRAM-SHA-256" else SASLScram512
        security = scram(self.principal, self.password, ssl_context=self.tls)
        return KafkaBroker(
            self.bootstrap.split(","),
            security=security,
            client_id=f"oms-kit-{self.principal}",
            **{**PRODUCER_OPTIONS, **options},
        )
