"""The local stack's settings: where each component listens, where its state and caches live, and every password
it gives out. Each tool (the stack and processes scripts, `oms`, the demo, the benchmark, the simulator, the
tests) reads them once at its entry point, `LocalStack.from_env()`, and passes them down.

    OMS_PORT_OFFSET, OMS_<COMPONENT>_PORT, OMS_KAFKA_BOOTSTRAP   ports and the Kafka address (shared/backbone/ports.py)
    OMS_KAFKA_BROKERS (1)               3: Kafka as a cluster of three KRaft nodes (deploy/local/stack/kafka.py)
    OMS_STATE_DIR (<repo>/.stack), OMS_CACHE_DIR (~/.cache/oms), OMS_PG_BIN (Debian's, else pg_config's)
    OMS_PG_ADMIN_PASSWORD               the cluster's administrator (role oms)
    OMS_<SERVICE>_DB_PASSWORD           each service's database role
    OMS_KAFKA_<PRINCIPAL>_PASSWORD      each Kafka principal: admin, the services, the outside parties
Unset passwords are the development ones, which the services accept only with OMS_ENVIRONMENT=development.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from shared.backbone.kafka_access import ADMIN, PRINCIPALS, Access
from shared.backbone.ports import HOST, StackPorts

if TYPE_CHECKING:
    from oms_kit.connection import Connection
from shared.backbone.settings import CommonSettings, development_kafka_password, development_password
from shared.contracts.topics import SERVICES

REPO = Path(__file__).resolve().parents[2]
DEVELOPMENT_ADMIN_PASSWORD = "dev-admin-password"  # noqa: S105 - the local stack's; set OMS_PG_ADMIN_PASSWORD
# The broker's TLS keystore (deploy/local/stack/certificates.py): a file of the stack's own, beside its private key.
DEVELOPMENT_KEYSTORE_PASSWORD = "dev-tls-keystore"  # noqa: S105


def kafka_password_variable(principal: str) -> str:
    return f"OMS_KAFKA_{principal.upper().replace('-', '_')}_PASSWORD"


@dataclass(frozen=True)
class LocalStack:
    ports: StackPorts
    state: Path
    cache: Path
    pg_bin_setting: Path | None  # None: Debian's PostgreSQL 15, else where pg_config says
    pg_admin_password: str = field(repr=False)
    db_passwords: Mapping[str, str] = field(repr=False)  # service -> the password of its database role
    kafka_passwords: Mapping[str, str] = field(repr=False)  # principal -> its SCRAM password

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalStack:
        env = os.environ if env is None else env
        return cls(
            ports=StackPorts.from_env(env),
            state=Path(env.get("OMS_STATE_DIR") or REPO / ".stack").resolve(),
            cache=Path(env.get("OMS_CACHE_DIR") or Path.home() / ".cache" / "oms").resolve(),
            pg_bin_setting=Path(env["OMS_PG_BIN"]) if env.get("OMS_PG_BIN") else None,
            pg_admin_password=env.get("OMS_PG_ADMIN_PASSWORD") or DEVELOPMENT_ADMIN_PASSWORD,
            db_passwords={s: env.get(f"OMS_{s.upper()}_DB_PASSWORD") or development_password(s) for s in SERVICES},
            kafka_passwords={
                p: env.get(kafka_password_variable(p)) or development_kafka_password(p) for p in (ADMIN, *PRINCIPALS)
            },
        )

    # --- addresses -------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def kafka_bootstrap(self) -> str:
        return self.ports.kafka_bootstrap

    def http_url(self, service: str) -> str:
        return f"http://{HOST}:{self.ports.http[service]}"

    def pg_dsn(self, role: str = "oms", database: str = "oms") -> str:
        # Plaintext, stated: the cluster also offers TLS (for the tests of TLS clients), which libpq's and asyncpg's
        # default ("prefer") would take on loopback, and the bench's anchors would measure.
        return f"postgresql://{role}@{HOST}:{self.ports.postgres}/{database}?sslmode=disable"

    # --- where things live -----------------------------------------------------------------------------------

    @property
    def kafka_dir(self) -> Path:
        return self.state / "kafka"

    @property
    def tls_dir(self) -> Path:
        """The stack's CA and this host's certificate (deploy/local/stack/certificates.py)."""
        return self.state / "tls"

    @property
    def maildir(self) -> Path:
        return self.state / "mail"

    @property
    def logs_dir(self) -> Path:
        return self.state / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    @property
    def keys_file(self) -> Path:
        """The development API keys `stack up` issues (deploy/local/keys.py)."""
        return self.state / "api-keys.json"

    @cached_property
    def pg_bin(self) -> Path:
        if self.pg_bin_setting is not None:
            return self.pg_bin_setting
        debian = Path("/usr/lib/postgresql/15/bin")
        if debian.is_dir():
            return debian
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        return Path(result.stdout.strip())

    # --- credentials -----------------------------------------------------------------------------------------

    def db_password(self, service: str) -> str:
        return self.db_passwords[service]

    def access(self, principal: str = ADMIN) -> Access:
        """How a principal of this stack reaches its broker (the tools act as `admin`)."""
        return Access(self.kafka_bootstrap, principal, self.kafka_passwords[principal])

    def tls_access(self, principal: str, ca_file: Path) -> Access:
        """The same principal through the brokers' TLS listeners, trusting the CA in `ca_file`."""
        return Access(self.ports.kafka_tls_bootstrap, principal, self.kafka_passwords[principal], ca_file=str(ca_file))

    def kit_connection(self, principal: str) -> Connection:
        """The same principal as the integrators' kit connects (the simulated warehouses, the kit's tests)."""
        # Imported here: the kit brings FastStream, which the other local tools need not load (~0.15 s).
        from oms_kit.connection import Connection  # noqa: PLC0415

        access = self.access(principal)
        return Connection(access.bootstrap, access.principal, access.password, mechanism=access.mechanism)  # type: ignore[arg-type]

    def environment(self) -> dict[str, str]:
        """The variables that give these same settings to a tool started as another process (the simulator)."""
        ports = self.ports
        return {
            "OMS_PORT_OFFSET": str(ports.offset),
            "OMS_KAFKA_PORT": str(ports.kafka),
            "OMS_KAFKA_CONTROLLER_PORT": str(ports.kafka_controller),
            "OMS_KAFKA_TLS_PORT": str(ports.kafka_tls),
            "OMS_KAFKA_BROKERS": str(ports.kafka_brokers),
            "OMS_KAFKA_BOOTSTRAP": ports.kafka_bootstrap,
            "OMS_PG_PORT": str(ports.postgres),
            "OMS_SMTP_PORT": str(ports.smtp),
            "OMS_PROMETHEUS_PORT": str(ports.prometheus),
            **{f"OMS_{name.upper()}_HTTP_PORT": str(port) for name, port in ports.http.items()},
            "OMS_STATE_DIR": str(self.state),
            "OMS_CACHE_DIR": str(self.cache),
            **({"OMS_PG_BIN": str(self.pg_bin_setting)} if self.pg_bin_setting else {}),
            "OMS_PG_ADMIN_PASSWORD": self.pg_admin_password,
            **{f"OMS_{s.upper()}_DB_PASSWORD": password for s, password in self.db_passwords.items()},
            **{kafka_password_variable(p): password for p, password in self.kafka_passwords.items()},
        }

    def service_environment(self, service: str) -> dict[str, str]:
        """What a service process needs to reach this stack as its own database role and Kafka principal."""
        return {
            "OMS_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "OMS_KAFKA_PASSWORD": self.kafka_passwords[service],
            "OMS_PG_PORT": str(self.ports.postgres),
            "OMS_DB_PASSWORD": self.db_passwords[service],
            "OMS_SMTP_PORT": str(self.ports.smtp),
        }

    def service_settings(self, service: str) -> CommonSettings:
        """A service's settings against this stack, for tools that act as that service (its role, its schema)."""
        return CommonSettings(
            service=service,
            environment="development",
            kafka_bootstrap=self.kafka_bootstrap,
            kafka_password=self.kafka_passwords[service],
            pg_port=self.ports.postgres,
            db_password=self.db_passwords[service],
        )
