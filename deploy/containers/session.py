"""The test session's Kafka and PostgreSQL as containers, started by testcontainers from the project's images
(oms-kafka, oms-postgres) through the engine's Docker-compatible API (podman's here, Docker's where it runs), for
`OMS_TEST_STACK=containers make test`.

They are published on 127.0.0.1 at the ports the session's settings name, so the services, the simulator and the
tests reach them exactly as they reach the native stack; the set-up (topics, principals, ACLs, roles, schemas,
migrations) is the native stack's own (deploy/local/stack.set_up). The SMTP sink, the services and the simulator
stay native processes, with their files where the native stack keeps them (the state directory), so every tool
started from the environment (`oms`) reaches the same stack. The native stack cannot run on the same ports meanwhile.

Every container is removed when the session ends, by the session itself: testcontainers' reaper (Ryuk) needs an
image from a registry and does not run under podman. Containers a killed session left behind (same state directory,
found by their label) are removed before new ones start: they would hold the ports."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.local import stack
from deploy.local.settings import LocalStack
from deploy.local.stack import kafka, postgres_setup, smtp
from deploy.local.supervisor import READY_TIMEOUT, StackError, fail, port_taken, say, wait_until
from shared.backbone.kafka_access import ADMIN

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

KAFKA_IMAGE = "oms-kafka:latest"
POSTGRES_IMAGE = "oms-postgres:latest"
KAFKA_EXTERNAL_LISTENER = 9094  # deploy/containers/kafka/entrypoint.sh: the listener advertised to the host
POSTGRES_UID = 999  # the image's postgres (deploy/containers/postgres/Dockerfile)
SOCKET_MOUNT = "/run/oms-postgres"
LABEL = "org.oms.test-session"  # its value: the session's state directory
PODMAN_SOCKET = Path(os.environ.get("OMS_PODMAN_SOCKET", "/run/podman/podman.sock"))
DOCKER_SOCKET = Path("/var/run/docker.sock")


def session_settings(env: Mapping[str, str] | None = None) -> LocalStack:
    """The native stack's settings (ports, passwords, state directory): one broker."""
    local = LocalStack.from_env(env)
    if local.ports.kafka_brokers != 1:
        raise ValueError("the containers test stack runs one broker: unset OMS_KAFKA_BROKERS")
    return local


def engine_environment() -> None:
    """What testcontainers needs to reach this machine's engine, set before it is imported (it reads them then).
    Where no Docker daemon's socket is but podman serves its API (make container-api-start): that API, without the
    reaper (no registry gives its image). Always: the containers' ports are this machine's (testcontainers believes
    it runs inside a container where /.dockerenv exists)."""
    if "DOCKER_HOST" not in os.environ and not DOCKER_SOCKET.exists() and PODMAN_SOCKET.exists():
        os.environ["DOCKER_HOST"] = f"unix://{PODMAN_SOCKET}"
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


@dataclass
class Container:
    """One container of the session as a fault reaches it: killed as a crash would end it, started again on its
    data (the image's volume) and waited for."""

    name: str
    container: DockerContainer
    answers: Callable[[LocalStack], Awaitable[bool]]

    def _state(self) -> dict[str, Any]:
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        state: dict[str, Any] = wrapped.attrs["State"]
        return state

    def running(self, local: LocalStack) -> bool:
        return bool(self._state().get("Running"))

    def pid(self, local: LocalStack) -> int | None:
        """The main process's pid on this machine while the container runs."""
        state = self._state()
        return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None

    def kill(self, local: LocalStack) -> int | None:
        """SIGKILL, and wait until the container has stopped; the pid killed, if it ran."""
        killed = self.pid(local)
        if killed is not None:
            wrapped = self.container.get_wrapped_container()
            wrapped.kill()
            wrapped.wait()
        return killed

    async def start(self, local: LocalStack) -> None:
        """Start the container unless it runs, and wait until it answers."""
        if not self.running(local):
            await asyncio.to_thread(self.container.get_wrapped_container().start)
        await self.wait_ready(local)

    async def wait_ready(self, local: LocalStack) -> None:
        try:
            await wait_until(lambda: self.answers(local), self.name, lambda: self.running(local), (), READY_TIMEOUT)
        except StackError as exc:
            raise StackError(f"{exc}\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 25) -> str:
        out = self.container.get_wrapped_container().logs(tail=lines)
        return f"--- last lines of the {self.name} container ---\n{out.decode(errors='replace')}"

    def remove(self) -> None:
        self.container.stop(force=True, delete_volume=True)


@dataclass
class DatabaseContainer(Container):
    socket: Path

    def socket_dir(self, local: LocalStack) -> Path:
        """The server's socket directory, the image's postgres's own, mounted from this machine."""
        return self.socket


def _published(container: DockerContainer, inside: int, port: int) -> DockerContainer:
    # On 127.0.0.1 only (docker-py takes the address with the port); with_bind_ports publishes on every interface.
    ports: dict[str, Any] = container.ports  # typed for a port number alone, which publishes on every address
    ports[f"{inside}/tcp"] = ("127.0.0.1", port)
    return container


def _new(image: str, local: LocalStack, **env: str) -> DockerContainer:
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415 - after engine_environment()

    # As in the compose stack: a read-only root filesystem, /tmp in memory, the data on the image's volume.
    return (
        DockerContainer(image)
        .with_envs(**env)
        .with_kwargs(read_only=True, labels={LABEL: str(local.state)})
        .with_tmpfs_mount("/tmp")  # noqa: S108 - the container's own
    )


def _kafka(local: LocalStack) -> Container:
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    container = _new(
        KAFKA_IMAGE,
        local,
        KAFKA_CLUSTER_ID=cluster_id,
        KAFKA_ADMIN_PASSWORD=local.kafka_passwords[ADMIN],
        KAFKA_EXTERNAL_ADDRESS=f"{local.host}:{local.ports.kafka}",
    )
    return Container("kafka", _published(container, KAFKA_EXTERNAL_LISTENER, local.ports.kafka), kafka.ready)


def _socket_dir(local: LocalStack) -> Path:
    """A fresh directory only the image's postgres may enter, as the native stack's socket directory is."""
    socket = local.state / "postgres-socket"
    shutil.rmtree(socket, ignore_errors=True)
    socket.mkdir(mode=0o700, parents=True)
    if os.geteuid() == 0:
        os.chown(socket, POSTGRES_UID, POSTGRES_UID)
    socket.chmod(0o700)
    return socket


def _postgres(local: LocalStack) -> DatabaseContainer:
    # The server listens inside on the port it is published on, so its socket has the name a client of that port
    # looks for (.s.PGSQL.<port>).
    port = local.ports.postgres
    container = _new(
        POSTGRES_IMAGE,
        local,
        OMS_PG_ADMIN_PASSWORD=local.pg_admin_password,
        PGPORT=str(port),
        OMS_PG_SOCKET_DIR=SOCKET_MOUNT,
    )
    socket = _socket_dir(local)
    container.with_volume_mapping(str(socket), SOCKET_MOUNT, "rw")
    return DatabaseContainer(
        "postgres", _published(container, port, port), postgres_setup.admin_can_log_in, socket=socket
    )


def _remove_left_behind(local: LocalStack) -> None:
    from testcontainers.core.docker_client import DockerClient  # noqa: PLC0415 - after engine_environment()

    client = DockerClient().client
    try:
        for left in client.containers.list(all=True, filters={"label": f"{LABEL}={local.state}"}):
            say(f"removing container {left.short_id} a previous session left behind")
            left.remove(force=True, v=True)
    finally:
        client.close()


def _ports_free(local: LocalStack) -> None:
    for what, port in (("kafka", local.ports.kafka), ("postgres", local.ports.postgres)):
        if port_taken(local.host, port):
            fail(f"port {port} for {what} is taken (a native stack on OMS_PORT_OFFSET={local.ports.offset}?)")


@contextmanager
def running(local: LocalStack) -> Iterator[stack.Infrastructure]:
    """Kafka and PostgreSQL in containers, set up as `stack up` sets up its own, and the native SMTP sink, for the
    length of the block; every container removed at its end."""
    engine_environment()
    started = time.monotonic()
    local.state.mkdir(parents=True, exist_ok=True)
    _remove_left_behind(local)
    _ports_free(local)
    containers: list[Container] = []
    try:
        broker, database = _kafka(local), _postgres(local)
        for each in (broker, database):
            each.container.start()
            containers.append(each)
            say(f"{each.name}: container {each.container.get_wrapped_container().short_id} started")
        asyncio.run(_set_up(local, broker, database))
        say(f"containers ready and set up in {time.monotonic() - started:.1f} s")
        yield stack.Infrastructure(kafka=broker, postgres=database, smtp=smtp)
    finally:
        smtp.stop(local)
        for each in reversed(containers):
            each.remove()
        _remove_left_behind(local)  # none, unless a removal failed
        say(f"containers removed: {', '.join(c.name for c in containers) or 'none had started'}")


async def _set_up(local: LocalStack, broker: Container, database: DatabaseContainer) -> None:
    await asyncio.gather(broker.wait_ready(local), database.wait_ready(local))
    await stack.set_up(local, alive=lambda: broker.running(local), started_elsewhere=True)
    await smtp.start(local)
