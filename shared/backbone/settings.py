"""Settings every service shares, from OMS_* environment variables (pydantic-settings), one model per concern
(Kafka, database, HTTP) composed into `CommonSettings`, which each service's settings extend.

Development defaults point at the local stack (deploy/local), at the ports `StackPorts` gives when the settings
are made. Without OMS_ENVIRONMENT a service runs as in production and refuses the well-known development
passwords and secrets, so a forgotten variable fails at start instead of running with a password anyone can read
in this repository; and it speaks to brokers or a database off its host only over TLS (shared.backbone.tls), unless
told the network is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.backbone.ports import HTTP_BASE, StackPorts
from shared.backbone.tls import hosts, loopback


def development_password(role: str) -> str:
    return f"dev-{role}-password"


def development_kafka_password(principal: str) -> str:
    return f"dev-kafka-{principal}"


class KafkaSettings(BaseSettings):
    """How a service reaches the brokers (as its own principal) and how it batches what it reads and writes."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    kafka_bootstrap: str = Field(default_factory=lambda: StackPorts.from_env().kafka_bootstrap)
    # The service's SCRAM password on Kafka (its principal is its name).
    kafka_password: str = ""
    # The local stack's brokers offer SCRAM-SHA-256; Strimzi's listeners only SCRAM-SHA-512 (deploy/kubernetes).
    kafka_scram_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    # The CA certificate (a PEM file) that signs the brokers' certificates: given, every client of the service speaks
    # TLS to the brokers (SASL_SSL) and checks their names; empty, SASL over plaintext (the local stack's loopback).
    kafka_ca_file: str = ""
    kafka_linger_ms: int = 5
    consumer_batch_size: int = 500
    consumer_poll_ms: int = 200
    # How a service's consumer of the order path (the topic it reads on an order's way from intake to its pick
    # task, shared/contracts/topics.ORDER_PATH) gathers its batches. Once a poll brings records, it keeps gathering
    # more into the same batch for the linger (milliseconds, 0: none): every batch pays a transaction, a WAL flush,
    # an offset commit and a relay round whatever its size, and at steady rates a poll holds a record or two. 20 ms,
    # where three hops pay it, brought the p99 to pick task at 200/s below what 50 did, at a few percent more CPU
    # (docs/benchmarks/findings.md, round 13). The broker may hold a fetch for more records (fetch.max.wait.ms)
    # until it has the minimum bytes (fetch.min.bytes); Kafka's defaults answer as soon as there is one record.
    consumer_linger_ms: int = Field(default=20, ge=0, le=1000)
    consumer_fetch_wait_ms: int = Field(default=500, ge=0, le=5000)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    # The same for everything else a service reads, which no pick task waits for (status reports, returns, stock
    # receipts; every record of notifications, returns and KPIs). Its batches cost what the order path's do, and
    # every fetch answered a round trip on both sides: the broker holds these fetches for up to 250 ms (or a
    # megabyte), each is a batch as it comes, with no linger after it. For the followers alone that took a quarter
    # less CPU at 200 orders/s and two thirds less at 10/s (round 13); a customer's e-mail or a status a quarter
    # second later is not noticed.
    follow_up_linger_ms: int = Field(default=0, ge=0, le=1000)
    follow_up_fetch_wait_ms: int = Field(default=250, ge=0, le=5000)
    follow_up_fetch_min_bytes: int = Field(default=1_000_000, ge=1)
    # At a peak the order path goes first (shared/backbone/peak.py): from this many records left to read by its
    # consumer groups over what they usually carry (0: never) follow-up consumers pause what can wait until the
    # backlog is down to the low mark over that, for at most the longest wait in a row. Each service looks at the
    # backlog every `peak_look_seconds`.
    peak_backlog_high: int = Field(default=500, ge=0)
    peak_backlog_low: int = Field(default=100, ge=0)
    peak_longest_wait_seconds: float = Field(default=300.0, gt=0)
    peak_look_seconds: float = Field(default=0.5, gt=0, le=60)
    # Longest wait for the broker to acknowledge a publish (outbox relay, dead letters).
    kafka_send_timeout_seconds: float = 30.0
    # Largest record a service publishes: a dead-letter copy larger than this (the original plus the dlq.*
    # headers) is kept in the service's dead_letters table instead. Below the broker's message.max.bytes.
    kafka_max_record_bytes: int = 1_000_000

    def pacing(self, order_path: bool) -> Pacing:
        """How a consumer of the order path, or of what follows it, gathers its batches."""
        if order_path:
            return Pacing(self.consumer_linger_ms, self.consumer_fetch_wait_ms, self.consumer_fetch_min_bytes)
        return Pacing(self.follow_up_linger_ms, self.follow_up_fetch_wait_ms, self.follow_up_fetch_min_bytes)


@dataclass(frozen=True)
class Pacing:
    """How long a consumer gathers after a poll, and how long the broker may hold its fetch for how many bytes."""

    linger_ms: int
    fetch_wait_ms: int
    fetch_min_bytes: int


class DatabaseSettings(BaseSettings):
    """Where a service's PostgreSQL is, its role's password, its pool, and the limits of every session."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    pg_host: str = "127.0.0.1"
    pg_port: int = Field(default_factory=lambda: StackPorts.from_env().postgres)
    pg_database: str = "oms"
    db_password: str = ""
    # The CA certificate (a PEM file) that signs the database server's certificate: given, every session is TLS and
    # the server's name is checked against it (libpq's sslmode=verify-full); empty, plaintext (never "prefer": a
    # session is what the settings say, not what the server happens to offer).
    pg_ca_file: str = ""
    db_pool_size: int = 5
    # Every pooled session runs with these server-side limits (milliseconds). A statement running longer
    # ends as 57014 (permanent: the record is dead-lettered); a lock wait ends sooner as 55P03 (contention:
    # retried); a transaction left idle is ended by the server, which frees its locks (a hung relay's among
    # them). The client's own command timeout is longer, so it only fires when the server stops answering.
    db_statement_timeout_ms: int = 30_000
    db_lock_timeout_ms: int = 10_000
    db_idle_in_tx_timeout_ms: int = 60_000
    db_command_timeout_seconds: float = 60.0

    @model_validator(mode="after")
    def _bounded_sessions(self) -> DatabaseSettings:
        if not 0 < self.db_statement_timeout_ms < self.db_command_timeout_seconds * 1000:
            raise ValueError("the statement timeout must be set and below the command timeout")
        if not 0 <= self.db_lock_timeout_ms < self.db_statement_timeout_ms:  # 0: lock waits end as statements do
            raise ValueError("the lock timeout must be below the statement timeout")
        return self

    def dsn(self, role: str) -> str:
        return f"postgresql://{role}@{self.pg_host}:{self.pg_port}/{self.pg_database}"


class HttpSettings(BaseSettings):
    """A service's HTTP surface: where it listens and what one caller may send."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 0  # 0: the service's port on the local stack
    # Requests per second one API key may make to one instance (a key's own rate in auth.api_keys wins).
    api_rate_per_second: float = 500.0
    max_body_bytes: int = 256 * 1024
    # How long an idle keep-alive connection stays open (seconds). Clients and load balancers keep idle
    # connections far longer than uvicorn's 5 s default (AWS's load balancers 60 s, vegeta without limit): a
    # request sent as the server closes its connection gets a reset and no answer, and a POST is not retried for
    # the client. Above a load balancer's 60 s, the server is not the side that closes first. Each idle
    # connection holds a file descriptor for as long: below the limit of open files, a proxy in front bounds them.
    http_keep_alive_seconds: int = Field(default=75, ge=1, le=3600)


class CommonSettings(KafkaSettings, DatabaseSettings, HttpSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    service: str = ""
    # Unset means production: only the local stack and the tests opt into development (and its passwords).
    environment: Literal["development", "test", "production"] = "production"
    # The brokers and the database are on a network only this deployment uses (one host's compose network): production
    # may then reach them without TLS. Elsewhere orders, customers' addresses and the SCRAM exchange would cross the
    # network in clear.
    trusted_network: bool = False
    instance: str = "1"

    outbox_poll_seconds: float = 1.0
    # Contention (deadlock, serialization failure, lock timeout) is retried this many times for a batch,
    # and again for each record of it alone, before the record is dead-lettered.
    contention_retries: int = 5
    # processed_events rows are kept this long, then pruned in batches (see README, "How an order cannot get
    # lost"): longer than any record can be redelivered, i.e. the topics' retention (7 days by default).
    inbox_retention_hours: float = 14 * 24
    inbox_prune_seconds: float = 300.0
    inbox_prune_batch: int = 5_000
    # How often the service looks at the snapshots open on its database (shared/backbone/snapshots.py).
    db_snapshot_watch_seconds: float = 10.0

    # Fault injection for the crash tests: die with SIGKILL between the database commit and the offset commit.
    fault_kill_after_db_commit: bool = False

    @model_validator(mode="after")
    def _fill_and_refuse_unsafe_defaults(self) -> CommonSettings:
        if not self.http_port and self.service in HTTP_BASE:
            self.http_port = StackPorts.from_env().http[self.service]
        production = self.environment == "production"
        self.db_password = _secret(self.db_password, development_password(self.service), "OMS_DB_PASSWORD", production)
        self.kafka_password = _secret(
            self.kafka_password, development_kafka_password(self.service), "OMS_KAFKA_PASSWORD", production
        )
        if self.environment == "production" and self.fault_kill_after_db_commit:
            raise ValueError("fault injection is for tests only")
        if production and not self.trusted_network:
            _refuse_plaintext(self)
        if self.kafka_send_timeout_seconds * 1000 >= self.db_idle_in_tx_timeout_ms:
            raise ValueError(
                "the relay waits for the broker inside a transaction: keep the send timeout below the idle timeout"
            )
        return self

    @property
    def db_role(self) -> str:
        return self.service

    @property
    def db_dsn(self) -> str:
        return self.dsn(self.db_role)


def _refuse_plaintext(settings: CommonSettings) -> None:
    """Production reaches brokers and a database off its host over TLS only."""
    off_host = "set it, or OMS_TRUSTED_NETWORK=true where the network is this deployment's own"
    if not settings.kafka_ca_file and not all(loopback(host) for host in hosts(settings.kafka_bootstrap)):
        raise ValueError(f"OMS_KAFKA_CA_FILE is not set: the brokers would be reached in plaintext ({off_host})")
    if not settings.pg_ca_file and not loopback(settings.pg_host):
        raise ValueError(f"OMS_PG_CA_FILE is not set: the database would be reached in plaintext ({off_host})")


def _secret(value: str, development: str, variable: str, production: bool) -> str:
    """The configured secret; in development the well-known development one, which production refuses."""
    if not value:
        if production:
            raise ValueError(f"{variable} must be set (OMS_ENVIRONMENT=development opts into the local stack's)")
        return development
    if production and value == development:
        raise ValueError(f"{variable} is the development one, refused outside development")
    return value
