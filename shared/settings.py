"""Settings every service shares, from OMS_* environment variables (pydantic-settings).

Development defaults point at the local stack (deploy/local). Without OMS_ENVIRONMENT a service runs as in
production and refuses the well-known development passwords and secrets, so a forgotten variable fails at
start instead of running with a password anyone can read in this repository.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import ports

SERVICES = ("capture", "allocation", "fulfillment", "notifications")
HTTP_PORTS = ports.HTTP


def development_password(role: str) -> str:
    return f"dev-{role}-password"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    service: str = ""
    # Unset means production: only the local stack and the tests opt into development (and its passwords).
    environment: Literal["development", "test", "production"] = "production"
    instance: str = "1"

    kafka_bootstrap: str = ports.KAFKA_BOOTSTRAP
    kafka_linger_ms: int = 5
    consumer_batch_size: int = 500
    consumer_poll_ms: int = 200

    pg_host: str = "127.0.0.1"
    pg_port: int = ports.POSTGRES
    pg_database: str = "oms"
    db_password: str = ""
    db_pool_size: int = 5

    http_host: str = "127.0.0.1"
    http_port: int = 0

    outbox_poll_seconds: float = 1.0
    # Requests per second one API key may make to one instance (a key's own rate in auth.api_keys wins).
    api_rate_per_second: float = 500.0
    max_body_bytes: int = 256 * 1024

    # Fault injection for the crash tests: die with SIGKILL between the database commit and the offset commit.
    fault_kill_after_db_commit: bool = False

    @model_validator(mode="after")
    def _fill_and_refuse_unsafe_defaults(self) -> CommonSettings:
        if not self.http_port and self.service in HTTP_PORTS:
            self.http_port = HTTP_PORTS[self.service]
        if not self.db_password:
            if self.environment == "production":
                raise ValueError(
                    "OMS_DB_PASSWORD must be set (OMS_ENVIRONMENT=development opts into the local stack's passwords)"
                )
            self.db_password = development_password(self.service)
        elif self.environment == "production" and self.db_password == development_password(self.service):
            raise ValueError("the development database password may not be used in production")
        if self.environment == "production" and self.fault_kill_after_db_commit:
            raise ValueError("fault injection is for tests only")
        return self

    @property
    def db_role(self) -> str:
        return self.service

    @property
    def db_dsn(self) -> str:
        return f"postgresql://{self.db_role}@{self.pg_host}:{self.pg_port}/{self.pg_database}"
