"""The real stack for integration and end-to-end tests: Kafka, PostgreSQL and the SMTP sink started by the
project's own script (or, with OMS_TEST_STACK=containers, Kafka and PostgreSQL in containers started by
testcontainers from the project's images), and the four services plus the simulator as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from deploy.containers import session
from deploy.local import processes
from deploy.local import stack as local_stack
from deploy.local.keys import DevelopmentKeys
from tests.local import LOCAL, STACK

# Settings built in the tests use the local stack's development passwords, which production settings refuse.
os.environ.setdefault("OMS_ENVIRONMENT", "test")


@pytest.fixture(scope="session")
def stack() -> Iterator[local_stack.Infrastructure]:
    """The stack as the project's script starts it, stopped at the end if this session started it; or its Kafka and
    PostgreSQL in containers, removed at the end."""
    if STACK == "containers":
        with session.running(LOCAL) as infrastructure:
            yield infrastructure
        return
    already_running = local_stack.running(LOCAL)
    env = {**os.environ, **LOCAL.environment()}  # the session's settings, passed down
    subprocess.run([sys.executable, "-m", "deploy.local.stack", "up"], cwd=processes.REPO, env=env, check=True)
    yield local_stack.NATIVE
    if not already_running:
        local_stack.down(LOCAL)


@pytest.fixture(scope="session")
def pipeline(stack: local_stack.Infrastructure) -> Iterator[dict[str, processes.Process]]:
    """Every service running; those this session started are stopped at its end."""
    everything = processes.everything(LOCAL)
    started = [p for p in everything if p.pid() is None]
    processes.start_all(everything)
    yield {p.name: p for p in everything}
    for process in reversed(started):
        process.stop()


@pytest.fixture(scope="session")
async def db(stack: local_stack.Infrastructure) -> AsyncIterator[asyncpg.Pool]:
    """An administrator's view across the services' schemas, for assertions only."""
    pool = await asyncpg.create_pool(LOCAL.pg_dsn(), password=LOCAL.pg_admin_password, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def http(pipeline: dict[str, processes.Process]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=LOCAL.http_url("capture"), timeout=30, auth=DevelopmentKeys(LOCAL.keys_file)
    ) as client:
        yield client
