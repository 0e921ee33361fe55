"""PostgreSQL access: one asyncpg pool per service, pinned to the service's own schema and bounded by
server-side timeouts, over TLS when the settings name the server's CA, and the migration runner."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.backbone.settings import CommonSettings, DatabaseSettings
from shared.backbone.tls import verifying

log = logging.getLogger(__name__)
# What handlers and repositories take: a plain or a pooled connection.
Conn = asyncpg.Connection | PoolConnectionProxy
BACKBONE_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns, one array parameter each, for a statement that writes them all with `unnest`."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def lock_names(conn: Conn, scope: str, names: Iterable[str]) -> None:
    """Hold an advisory lock on each `scope:name` until the transaction ends, taken in one global order (so two
    transactions locking several names never wait on each other in a cycle). Held twice is held once. They live in
    the server's memory: nothing is written to the WAL and no row is left behind."""
    if keys := sorted(set(names)):
        await conn.execute(
            "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended($1 || ':' || name, 0) AS key"
            " FROM unnest($2::text[]) AS name ORDER BY key) AS keys",
            scope,
            keys,
        )


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def server_settings(settings: CommonSettings) -> dict[str, str]:
    """Session settings of every service connection: its own schema, and limits so that no statement, lock
    wait or forgotten transaction can hold a partition, a relay or a lock for good (see CommonSettings)."""
    return {
        "search_path": settings.db_role,
        # The instance too: an operator (or the chaos run) can tell which process holds a lock or a session.
        "application_name": f"oms-{settings.service}-{settings.instance}"[:63],
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_tx_timeout_ms),
    }


def session_tls(settings: DatabaseSettings) -> ssl.SSLContext | bool:
    """verify-full with the settings' CA; else plaintext, stated (asyncpg's default, "prefer", would take TLS from a
    server that offers it and plaintext from one that does not, or from anyone between)."""
    return verifying(settings.pg_ca_file) if settings.pg_ca_file else False


class ServiceConnection(asyncpg.Connection):
    """A pooled service connection, given back to the pool without asyncpg's reset statement (advisory locks,
    cursors, LISTEN, session settings: a round trip on every release, a fifth of a consumer's statements at
    steady rates). The services leave nothing of that on a pooled connection: settings are SET LOCAL, advisory
    locks are transaction-scoped, LISTEN has a connection of its own (shared.dispatch). An open transaction is
    still rolled back on release: asyncpg does that whatever the reset statement is."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(settings: CommonSettings, *, min_size: int = 1) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.db_dsn,
        connection_class=ServiceConnection,
        password=settings.db_password,
        min_size=min_size,
        max_size=settings.db_pool_size,
        init=_init_connection,
        server_settings=server_settings(settings),
        command_timeout=settings.db_command_timeout_seconds,
        ssl=session_tls(settings),
    )


async def connect(settings: CommonSettings) -> asyncpg.Connection:
    conn = await asyncpg.connect(
        settings.db_dsn,
        password=settings.db_password,
        server_settings=server_settings(settings),
        command_timeout=settings.db_command_timeout_seconds,
        ssl=session_tls(settings),
    )
    await _init_connection(conn)
    return conn


def migration_files(directory: Path) -> list[Path]:
    """Numbered files, applied in order: 001_orders.sql, 002_timeline.sql, ..."""
    return sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())


async def migrate(conn: asyncpg.Connection, schema: str, directory: Path) -> list[str]:
    """Apply the backbone's, then the service's, not yet applied migrations to one schema; returns their names.

    An advisory lock keeps two instances starting at once from applying the same file twice.
    """
    applied_now: list[str] = []
    await conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations '
        "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        done: set[str] = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
        backbone = [(f"shared/{p.name}", p) for p in migration_files(BACKBONE_MIGRATIONS)]
        for name, path in backbone + [(p.name, p) for p in migration_files(directory)]:
            if name in done:
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(path.read_text())
            await conn.execute(f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', name)
            applied_now.append(name)
            log.info("applied migration %s.%s", schema, name)
    return applied_now


def service_migrations(service: str) -> Path:
    return Path(__file__).resolve().parents[2] / "services" / service / "migrations"
