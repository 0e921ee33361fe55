"""The containers test stack (deploy/containers/session.py): the session's Kafka and PostgreSQL are containers of
the project's images on the session's loopback ports; a session of its own is set up as `stack up` sets up the
native one, brings a killed container back on its data, and leaves no container behind."""

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import docker
import pytest
from aiokafka.admin import NewTopic

from deploy.containers import session
from deploy.local.settings import LocalStack
from deploy.local.stack import Infrastructure, kafka, postgres_setup
from shared.contracts.topics import TOPICS
from tests.local import LOCAL
from tests.scenario import free_port


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    session.engine_environment()
    client = docker.from_env()
    yield client
    client.close()


def labelled(engine: docker.DockerClient, local: LocalStack) -> dict[str, Any]:
    """The containers of a session by image, inspected."""
    found = engine.containers.list(all=True, filters={"label": f"{session.LABEL}={local.state}"})
    return {c.attrs["Config"]["Image"].rsplit("/", 1)[-1]: c.attrs for c in found}


async def test_the_session_runs_kafka_and_postgres_in_containers_of_the_project_images(
    stack: Infrastructure, db: asyncpg.Pool, engine: docker.DockerClient
) -> None:
    # given the session's stack, then its broker and its database are the two containers labelled with the session
    containers = labelled(engine, LOCAL)
    assert set(containers) == {session.KAFKA_IMAGE, session.POSTGRES_IMAGE}
    kafka, postgres = containers[session.KAFKA_IMAGE], containers[session.POSTGRES_IMAGE]
    assert stack.kafka.pid(LOCAL) == kafka["State"]["Pid"] and stack.postgres.pid(LOCAL) == postgres["State"]["Pid"]
    # published on 127.0.0.1 only, at the ports the session's settings name
    published = {
        image: [
            (b["HostIp"], int(b["HostPort"]))
            for bindings in c["HostConfig"]["PortBindings"].values()
            for b in bindings or []
        ]
        for image, c in containers.items()
    }
    assert published == {
        session.KAFKA_IMAGE: [("127.0.0.1", LOCAL.ports.kafka)],
        session.POSTGRES_IMAGE: [("127.0.0.1", LOCAL.ports.postgres)],
    }
    # and the database the tests reach is the container's (its socket directory is the mounted one)
    assert await db.fetchval("SHOW unix_socket_directories") == session.SOCKET_MOUNT


def own_settings(tmp_path) -> LocalStack:
    """The session's settings but for the ports (free ones) and the state directory."""
    ports = {f"OMS_{name}_PORT": str(free_port()) for name in ("KAFKA", "PG", "SMTP")}
    inherited = {k: v for k, v in LOCAL.environment().items() if k != "OMS_KAFKA_BOOTSTRAP"}  # its own broker's
    return LocalStack.from_env({**inherited, **ports, "OMS_STATE_DIR": str(tmp_path / "stack")})


async def topics_on(local: LocalStack) -> set[str]:
    admin = local.access().admin()
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def create_topic(local: LocalStack, name: str) -> None:
    admin = local.access().admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()


async def as_administrator(local: LocalStack, sql: str) -> Any:
    """The first value of the last statement's result (SQL without a result: its status)."""
    conn = await asyncpg.connect(local.pg_dsn(), password=local.pg_admin_password)
    try:
        return await (conn.fetchval(sql) if sql.lstrip().upper().startswith("SELECT") else conn.execute(sql))
    finally:
        await conn.close()


async def service_migrations(local: LocalStack, service: str) -> int:
    conn = await asyncpg.connect(local.pg_dsn(service), password=local.db_password(service))
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{service}".schema_migrations'))
    finally:
        await conn.close()


def test_a_session_is_set_up_survives_a_crash_of_each_container_and_leaves_none_behind(
    tmp_path, engine: docker.DockerClient
) -> None:
    local = own_settings(tmp_path)
    with session.running(local) as infrastructure:
        # given a session of its own: two containers on its ports, set up as `stack up` sets up the native stack
        assert set(labelled(engine, local)) == {session.KAFKA_IMAGE, session.POSTGRES_IMAGE}
        assert {t.name for t in TOPICS} <= asyncio.run(topics_on(local))
        assert asyncio.run(service_migrations(local, "capture")) > 0  # as capture's own role, with its password
        asyncio.run(create_topic(local, "crash.kept"))
        asyncio.run(
            as_administrator(local, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('before the crash')")
        )

        # when the broker's container is killed, then it is down, and started again it serves the same topics
        killed = infrastructure.kafka.kill(local)
        assert killed is not None and not infrastructure.kafka.running(local)
        asyncio.run(infrastructure.kafka.start(local))
        assert infrastructure.kafka.pid(local) not in (None, killed)
        assert "crash.kept" in asyncio.run(topics_on(local))

        # when the database's container is killed, then started again it has the committed row
        assert infrastructure.postgres.kill(local) and not infrastructure.postgres.running(local)
        asyncio.run(infrastructure.postgres.start(local))
        assert asyncio.run(as_administrator(local, "SELECT note FROM kept")) == "before the crash"

    # then, the session over, no container of it is left and its ports are free again
    assert labelled(engine, local) == {}
    assert not asyncio.run(kafka.ready(local)) and not asyncio.run(postgres_setup.admin_can_log_in(local))
