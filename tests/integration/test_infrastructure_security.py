"""Secure by default: a service started without an explicit environment refuses the development passwords and
secrets; PostgreSQL trusts no connection (SCRAM for every role, a socket directory only postgres can enter)."""

import os
import stat
import subprocess
import sys

import asyncpg
import pytest

from deploy.local import processes
from deploy.local.stack import Infrastructure
from tests.local import LOCAL


def start_without_environment(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Start a service as an operator who forgot OMS_ENVIRONMENT would; it must stop at once."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMS_") or k == "OMS_PORT_OFFSET"}
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=processes.REPO,
        env={**clean, **env, "OMS_HTTP_PORT": str(LOCAL.ports.http["capture"] + 40)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "env", "refusal"),
    [
        ("services.capture", {}, "OMS_DB_PASSWORD must be set"),
        ("services.allocation", {"OMS_DB_PASSWORD": "dev-allocation-password"}, "OMS_DB_PASSWORD is the development"),
        ("services.fulfillment", {"OMS_DB_PASSWORD": "real"}, "OMS_KAFKA_PASSWORD must be set"),
        ("services.capture", {"OMS_DB_PASSWORD": "real", "OMS_KAFKA_PASSWORD": "real"}, "development Shopify secret"),
        (
            "services.notifications",
            {"OMS_DB_PASSWORD": "x", "OMS_KAFKA_PASSWORD": "y"},
            "OMS_WEBHOOK_SECRET must be set",
        ),
    ],
)
def test_a_service_without_an_explicit_environment_refuses_development_secrets(module, env, refusal) -> None:
    started = start_without_environment(module, **env)
    assert started.returncode != 0
    assert refusal in started.stdout + started.stderr


async def test_postgres_trusts_no_connection_and_every_role_has_a_scram_password(db) -> None:
    rules = await db.fetch("SELECT line_number, type, auth_method FROM pg_hba_file_rules")
    assert rules and all(rule["auth_method"] == "scram-sha-256" for rule in rules), rules
    weak = await db.fetch(
        "SELECT rolname FROM pg_authid WHERE rolcanlogin AND coalesce(rolpassword, '') NOT LIKE 'SCRAM-SHA-256$%'"
    )
    assert weak == []
    assert await db.fetchval("SHOW password_encryption") == "scram-sha-256"


async def test_the_socket_directory_is_postgres_own_and_a_local_connection_needs_the_password(
    stack: Infrastructure,
) -> None:
    sockets = stack.postgres.socket_dir(LOCAL)
    mode = stat.S_IMODE(sockets.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    for role in ("oms", "capture"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(
                host=str(sockets), port=LOCAL.ports.postgres, user=role, database="oms", password="wrong"
            )
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InterfaceError)):  # no password: none to send
            await asyncpg.connect(host=str(sockets), port=LOCAL.ports.postgres, user=role, database="oms", password="")
