"""What the cluster holds, brought up to date at every `up`: the database `oms`, one login role and schema per
service (with the password the stack's settings give it), the `auth` schema the services may only read, the
development API keys, and every service's migrations."""

from __future__ import annotations

import contextlib
import json

import asyncpg

from deploy.local.settings import LocalStack
from deploy.local.supervisor import say
from shared.backbone import auth
from shared.backbone.db import migrate, service_migrations
from shared.contracts.topics import SERVICES

# Channels the local stack issues API keys for (the demo, the simulator and the tests use them).
DEVELOPMENT_CHANNELS = ("webshop", "marketplace", "pos", "b2b")


async def admin_connect(local: LocalStack, database: str) -> asyncpg.Connection:
    """A session of the stack's administrator on `database`."""
    return await asyncpg.connect(local.pg_dsn("oms", database), password=local.pg_admin_password)


async def admin_can_log_in(local: LocalStack) -> bool:
    """The server answers and knows the administrator: ready for `create_objects` (wherever it runs)."""
    try:
        conn = await asyncpg.connect(local.pg_dsn("oms", "postgres"), password=local.pg_admin_password, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def private_database(database: str) -> list[str]:
    """Nothing for PUBLIC: a role reaches only what it is granted."""
    return ["REVOKE ALL ON SCHEMA public FROM PUBLIC", f"REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC"]


def service_schema(service: str, database: str) -> list[str]:
    """A service's role may connect and owns its schema, nothing more (its login and password are set apart)."""
    return [
        f'GRANT CONNECT ON DATABASE {database} TO "{service}"',
        f'CREATE SCHEMA IF NOT EXISTS "{service}" AUTHORIZATION "{service}"',
    ]


def auth_reader(service: str) -> list[str]:
    """A service reads the API keys (shared/backbone/auth.sql, applied after the schemas) and cannot change them."""
    return [f'GRANT USAGE ON SCHEMA auth TO "{service}"', f'GRANT SELECT ON auth.api_keys TO "{service}"']


async def create_objects(local: LocalStack) -> None:
    conn = await admin_connect(local, "postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'oms'"):
            await conn.execute("CREATE DATABASE oms")
    finally:
        await conn.close()
    conn = await admin_connect(local, "oms")
    try:
        for statement in private_database("oms"):
            await conn.execute(statement)
        for service in SERVICES:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service):
                await conn.execute(f'CREATE ROLE "{service}" LOGIN')
            # Utility statements take no bind parameters: let the server quote the password (%L).
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD %L', $1::text, $2::text)",
                    service,
                    local.db_password(service),
                )
            )
            for statement in service_schema(service, "oms"):
                await conn.execute(statement)
        await conn.execute(auth.SCHEMA_FILE.read_text())
        for service in SERVICES:
            for statement in auth_reader(service):
                await conn.execute(statement)
        await _development_keys(local, conn)
    finally:
        await conn.close()
    say(f"postgres: database oms, roles and schemas for {', '.join(SERVICES)}; API keys in {local.keys_file}")


async def _development_keys(local: LocalStack, conn: asyncpg.Connection) -> None:
    """Keys for the local stack's channels and one operator key, written to the state dir (mode 0600) for the
    demo, the tests and `oms`; issued again when the database no longer knows them (after a purge)."""
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(local.keys_file.read_text())
        tokens = [known["operator"], *known["channels"].values()]
        ids = [t.split("_")[1] for t in tokens]
        if set(known["channels"]) >= set(DEVELOPMENT_CHANNELS) and all([await auth.active(conn, i) for i in ids]):
            return
    channels = {c: (await auth.issue(conn, "channel", c, "local development")).token for c in DEVELOPMENT_CHANNELS}
    operator = (await auth.issue(conn, "operator", None, "local development")).token
    local.keys_file.touch(mode=0o600)
    local.keys_file.write_text(json.dumps({"operator": operator, "channels": channels}, indent=2) + "\n")


async def migrate_all(local: LocalStack) -> None:
    """Each service's migrations, applied as its own role (it owns its schema only)."""
    applied: list[str] = []
    for service in SERVICES:
        conn = await asyncpg.connect(local.pg_dsn(service), password=local.db_password(service))
        try:
            names = await migrate(conn, service, service_migrations(service))
            applied += [f"{service}.{name}" for name in names]
        finally:
            await conn.close()
    say(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))
