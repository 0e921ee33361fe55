"""The real local infrastructure: Kafka (KRaft, one node, or a cluster of three with OMS_KAFKA_BROKERS=3),
PostgreSQL and an SMTP sink, as plain processes on 127.0.0.1 (no Docker), one module per component (kafka,
postgres, smtp: configure, start, ready, stop, kill), what `up` brings in line with the registry (kafka_setup:
topics, principals and ACLs; postgres_setup: database, roles, schemas, API keys, migrations), all under the one
supervisor (deploy/local/supervisor.py).

    python -m deploy.local.stack up|down [--purge]|status

Where, and with which passwords, is the local stack's settings (deploy/local/settings.py), read once by the
caller and passed down. `up` and `down` are idempotent. `set_up` is what `up` brings in line, also applied to
brokers and servers this package did not start (the compose stack's, the test session's containers), and
`Infrastructure` is how a fault reaches whichever runs (NATIVE: these processes).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.local.settings import LocalStack
from deploy.local.stack import kafka, kafka_setup, postgres, postgres_setup, smtp
from deploy.local.supervisor import StackError, restart_clock, say

__all__ = [
    "NATIVE",
    "Component",
    "Database",
    "Infrastructure",
    "StackError",
    "components",
    "down",
    "kafka",
    "postgres",
    "running",
    "set_up",
    "smtp",
    "status",
    "up",
]


class Component(Protocol):
    """A piece of the stack as a fault injector sees it (the kafka, postgres and smtp modules are ones)."""

    def running(self, local: LocalStack) -> bool: ...

    def pid(self, local: LocalStack) -> int | None: ...

    def kill(self, local: LocalStack) -> object: ...  # as a crash: no clean shutdown

    async def start(self, local: LocalStack) -> None: ...  # on the same data, and wait until it answers


class Database(Component, Protocol):
    def socket_dir(self, local: LocalStack) -> Path: ...


@dataclass(frozen=True)
class Infrastructure:
    """Where the session's Kafka, PostgreSQL and SMTP sink run, as a fault reaches them."""

    kafka: Component
    postgres: Database
    smtp: Component


NATIVE = Infrastructure(kafka, postgres, smtp)


async def set_up(
    local: LocalStack,
    *,
    replication: int | None = None,
    alive: Callable[[], bool] | None = None,
    started_elsewhere: bool = False,
) -> None:
    """Topics, principals and ACLs, database, roles, schemas, API keys and migrations, on a broker and a server that
    answer. `started_elsewhere`: they are not this package's processes (containers): the tools' Kafka files are
    written for them and the access applied whatever this state directory remembers applying."""
    if started_elsewhere:
        await asyncio.to_thread(kafka.ensure_jars, local)
        await asyncio.to_thread(kafka.configure_clients, local)
    await kafka_setup.create_topics(local, replication=replication, alive=alive)
    await asyncio.to_thread(kafka_setup.apply_access, local, force=started_elsewhere)
    await postgres_setup.create_objects(local)
    await postgres_setup.migrate_all(local)


async def up(local: LocalStack) -> None:
    """Start whatever is not running yet and bring topics, roles, schemas and migrations up to date."""
    restart_clock()
    local.state.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(kafka.ensure_jars, local)
    await kafka.start(local)
    await postgres.start(local)
    await set_up(local)
    await smtp.start(local)
    say(
        f"stack up: kafka {local.kafka_bootstrap}, postgres {local.host}:{local.ports.postgres}/oms, "
        f"smtp {local.host}:{local.ports.smtp}, state {local.state}"
    )


def down(local: LocalStack, purge: bool = False) -> None:
    """Stop the SMTP sink, Kafka and PostgreSQL; with purge also delete their data."""
    restart_clock()
    stopped = []
    for name, stop in (("smtp", smtp.stop), ("kafka", kafka.stop), ("postgres", postgres.stop)):
        if stop(local):
            stopped.append(name)
            say(f"{name}: stopped")
    if not stopped:
        say("nothing was running")
    if purge:
        cluster = postgres.base(local)
        shutil.rmtree(local.state, ignore_errors=True)
        shutil.rmtree(cluster, ignore_errors=True)
        say(f"purged {local.state}" + ("" if cluster.is_relative_to(local.state) else f" and {cluster}"))


def components(local: LocalStack) -> list[tuple[str, int | None, str]]:
    """(name, pid when running, address) of each piece of the stack."""
    return [
        *((node.name, node.process.pid(), f"{local.host}:{node.port}") for node in kafka.listed(local)),
        ("postgres", postgres.pid(local), f"{local.host}:{local.ports.postgres}"),
        ("smtp", smtp.pid(local), f"{local.host}:{local.ports.smtp}"),
    ]


def running(local: LocalStack) -> bool:
    return all(pid for _, pid, _ in components(local))


def status(local: LocalStack) -> None:
    for name, pid, address in components(local):
        state = f"running  pid {pid:<7}" if pid else "stopped           "
        print(f"{name:<9} {state} {address}")
