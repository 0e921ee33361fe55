"""The Deployments' init container (`python -m deploy.kubernetes.migrate SERVICE`) brings a service's schema up to
date as the service's own role, with only the database settings a Deployment gives it, and fails loudly when it
cannot: the pod then never starts the service on a schema it does not know."""

import os
import subprocess
import sys

import asyncpg

from deploy.local.settings import REPO
from shared.backbone.db import migration_files, service_migrations
from shared.contracts.topics import SERVICES
from tests.local import LOCAL


def init_container(service: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "OMS_PG_HOST": LOCAL.host,
        "OMS_PG_PORT": str(LOCAL.ports.postgres),
        "OMS_PG_DATABASE": "oms",
        "OMS_DB_PASSWORD": password,
    }
    command = [sys.executable, "-m", "deploy.kubernetes.migrate", service]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_the_init_container_finds_every_service_schema_current_as_the_service_role(
    stack: None, db: asyncpg.Pool
) -> None:
    for service in SERVICES:
        # Given the service's schema as the stack migrated it
        before = await db.fetchval(f'SELECT count(*) FROM "{service}".schema_migrations')
        assert before >= len(migration_files(service_migrations(service)))
        # When the init container runs with the service's password
        result = init_container(service, LOCAL.db_password(service))
        # Then it connects as the service, applies nothing twice and says so
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{service}: 0 migrations applied"
        assert await db.fetchval(f'SELECT count(*) FROM "{service}".schema_migrations') == before


def test_the_init_container_fails_on_a_wrong_password(stack: None) -> None:
    result = init_container("allocation", "not-the-password")
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr
