"""The compose stack (deploy/compose/compose.yaml) brought up, scaled and down in stages, each timed: the images
built, Kafka and PostgreSQL started and polled until they answer, the topics (replication factor 3), principals,
ACLs, roles, schemas and migrations applied with the native stack's own setup code (deploy/local/stack) through
the published ports, then the services, the simulator and Prometheus started and each instance's /readyz polled.
Readiness is the tool's to wait for: compose health checks do not run under every engine.

    python -m deploy.containers.compose up [--scale allocation=3] | scale SERVICE=N | down [--purge] | status
    python -m deploy.containers.compose build [SERVICE ...]     the images only (of those services)

podman-compose where no Docker daemon answers (deploy/containers/bootstrap.sh prepares podman), `docker compose`
where one does. Ports are the native stack's shifted by OMS_PORT_OFFSET, the three brokers' on 127.0.0.1 at the
Kafka port, +2 and +4. The tools' settings for this stack (API keys, Kafka client files) live in <state>/compose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from deploy.local import stack
from deploy.local.settings import REPO, LocalStack
from deploy.local.stack import postgres_setup
from deploy.local.supervisor import StackError, fail, port_taken, restart_clock, say, wait_until
from shared.contracts.topics import SERVICES

COMPOSE_FILE = REPO / "deploy" / "compose" / "compose.yaml"
PROJECT = "oms"
PROJECT_LABEL = f"com.docker.compose.project={PROJECT}"  # set by docker compose and podman-compose alike
BROKERS = 3
INFRASTRUCTURE = ("kafka-1", "kafka-2", "kafka-3", "postgres", "mailsink")
RUNNING = ("simulator", "prometheus", *SERVICES)
READY_TIMEOUT = 180.0


def broker_ports(local: LocalStack) -> list[int]:
    return [local.ports.kafka_node_ports(n)[0] for n in range(1, BROKERS + 1)]


def compose_stack(env: Mapping[str, str] | None = None) -> LocalStack:
    """The settings of the compose stack as the host's tools reach it: the native stack's ports and passwords,
    Kafka through the three published brokers, the tools' files in <state>/compose."""
    env = dict(os.environ if env is None else env)
    native = LocalStack.from_env(env)
    brokers = ",".join(f"{native.host}:{port}" for port in broker_ports(native))
    return LocalStack.from_env({**env, "OMS_STATE_DIR": str(native.state / "compose"), "OMS_KAFKA_BOOTSTRAP": brokers})


@dataclass(frozen=True)
class Compose:
    """The compose command of this machine's engine, with the stack's ports and passwords in its environment."""

    local: LocalStack
    engine: str  # "docker" or "podman": for exec and ps, which compose tools spell differently
    command: tuple[str, ...]

    @classmethod
    def detect(cls, local: LocalStack) -> Compose:
        docker = shutil.which("docker")
        if docker and _answers([docker, "info"]) and _answers([docker, "compose", "version"]):
            return cls(local, "docker", (docker, "compose"))
        podman_compose = shutil.which("podman-compose") or str(Path(sys.executable).with_name("podman-compose"))
        if not (shutil.which("podman") and Path(podman_compose).exists()):
            fail("neither a Docker daemon with `docker compose` nor podman with podman-compose: run make compose-up")
        return cls(local, "podman", (podman_compose,))

    def environment(self) -> dict[str, str]:
        ports = self.local.ports
        published = {f"OMS_KAFKA_{n + 1}_PORT": str(port) for n, port in enumerate(broker_ports(self.local))}
        return {
            **os.environ,
            **self.local.environment(),
            **published,
            "OMS_PG_PORT": str(ports.postgres),
            "OMS_CAPTURE_HTTP_PORT": str(ports.http["capture"]),
            "OMS_PROMETHEUS_PORT": str(ports.prometheus),
        }

    def run(self, *args: str, quiet: bool = True) -> str:
        cmd = [*self.command, "-p", PROJECT, "-f", str(COMPOSE_FILE), *args]
        result = subprocess.run(cmd, env=self.environment(), capture_output=quiet, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"{' '.join(cmd[len(self.command) :])} failed:\n{(result.stdout or '')[-2000:]}"
                f"{(result.stderr or '')[-3000:]}"
            )
        return result.stdout or ""

    def container_ids(self, every: bool = False) -> list[str]:
        """The project's containers (with every: stopped ones too)."""
        cmd = [self.engine, "ps", "-q", *(["-a"] if every else []), "--filter", f"label={PROJECT_LABEL}"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()

    def containers(self) -> dict[str, list[str]]:
        """Running containers of the project by compose service."""
        out = subprocess.run(
            [self.engine, "ps", "--filter", f"label={PROJECT_LABEL}", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = (
            json.loads(out) if out.strip().startswith("[") else [json.loads(line) for line in out.splitlines() if line]
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            labels = row.get("Labels") or {}
            if isinstance(labels, str):  # docker prints them as "k=v,k=v"
                labels = dict(item.split("=", 1) for item in labels.split(",") if "=" in item)
            names = row.get("Names")
            name = names[0] if isinstance(names, list) else str(names)
            found.setdefault(labels.get("com.docker.compose.service", "?"), []).append(name)
        return {service: sorted(names) for service, names in found.items()}

    def ready(self, container: str) -> bool:
        return _answers([self.engine, "exec", container, "/opt/oms/deploy/containers/services/entrypoint.sh", "ready"])


def _answers(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    yield
    timings[name] = time.monotonic() - started
    say(f"{name}: {timings[name]:.1f} s")


async def _brokers_ready(local: LocalStack) -> bool:
    """All three brokers answer a metadata request (their published ports open a little before that)."""
    if not all(port_taken(local.host, port) for port in broker_ports(local)):
        return False
    admin = local.access().admin(request_timeout_ms=5000)
    try:
        await admin.start()
        return len((await admin.describe_cluster())["brokers"]) == BROKERS
    except Exception:  # any failure here only means "not yet"
        return False
    finally:
        await admin.close()


async def _set_up(compose: Compose) -> None:
    """What the native `stack up` brings in line with the registry, applied to the containers."""
    local = compose.local

    def alive() -> bool:
        return len(compose.containers().get("kafka-1", [])) == 1

    logs: tuple[Path, ...] = ()
    await wait_until(lambda: _brokers_ready(local), "kafka cluster", alive, logs, READY_TIMEOUT)
    ready = postgres_setup.admin_can_log_in
    await wait_until(lambda: ready(local), "postgres", lambda: True, logs, READY_TIMEOUT)
    # KafkaAccess.java runs on the host with the jars the native stack caches, through the published brokers.
    await stack.set_up(local, replication=BROKERS, alive=alive, started_elsewhere=True)


def _wait_services_ready(compose: Compose, scale: Mapping[str, int]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        running = compose.containers()
        waiting = [s for s in RUNNING if len(running.get(s, [])) < scale.get(s, 1)]
        waiting += [c for s in (*SERVICES, "simulator") for c in running.get(s, []) if not compose.ready(c)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            fail(f"not ready after {READY_TIMEOUT:.0f} s: {', '.join(waiting)}")
        time.sleep(1)


def up(compose: Compose, scale: Mapping[str, int], build: bool = True) -> dict[str, float]:
    """Bring the whole stack up (or in line: idempotent), return how long each stage took."""
    restart_clock()
    timings: dict[str, float] = {}
    compose.local.state.mkdir(parents=True, exist_ok=True)
    if build:
        with stage("images built", timings):
            compose.run("build")
    with stage("kafka and postgres started", timings):
        compose.run("up", "-d", *INFRASTRUCTURE)
    with stage("kafka and postgres ready, topics, access, schemas and migrations applied", timings):
        asyncio.run(_set_up(compose))
    with stage("services, simulator and prometheus ready", timings):
        compose.run("up", "-d", *(f"--scale={s}={n}" for s, n in scale.items()), *RUNNING)
        _wait_services_ready(compose, scale)
    say(
        f"compose stack up: capture {compose.local.http_url('capture')}, kafka {compose.local.kafka_bootstrap}, "
        f"postgres {compose.local.host}:{compose.local.ports.postgres}, "
        f"prometheus http://{compose.local.host}:{compose.local.ports.prometheus}"
    )
    return timings


def build(compose: Compose, services: list[str]) -> None:
    """The images of these services (all by default), from the cache when nothing changed."""
    started = time.monotonic()
    compose.run("build", *services)
    say(f"images built{' for ' + ', '.join(services) if services else ''}: {time.monotonic() - started:.1f} s")


def scale(compose: Compose, service: str, instances: int) -> float:
    """Run `instances` of a service and wait until each is ready; how long it took."""
    started = time.monotonic()
    compose.run("up", "-d", "--no-deps", f"--scale={service}={instances}", service)
    _wait_services_ready(compose, {service: instances})
    took = time.monotonic() - started
    say(f"{service} scaled to {instances}: {took:.1f} s")
    return took


def down(compose: Compose, purge: bool = False) -> float:
    """Stop and remove the containers (with purge also the volumes and the tools' files); how long it took."""
    started = time.monotonic()
    # podman-compose removes only the instances the file declares, and then fails to remove the network the ones a
    # --scale added still use: remove every container of the project first, then the rest.
    # A container others were started to depend on is removed only after them: a few rounds.
    for _ in range(3):
        if ours := compose.container_ids(every=True):
            subprocess.run([compose.engine, "rm", "-f", "-t", "0", *ours], capture_output=True, check=False)
    if left := compose.container_ids(every=True):
        fail(f"could not remove containers {' '.join(left)}")
    compose.run("--profile", "grafana", "down", "-t", "0", *(["-v"] if purge else []))
    if purge:
        shutil.rmtree(compose.local.state, ignore_errors=True)
    took = time.monotonic() - started
    say(f"compose stack down{' and purged' if purge else ''}: {took:.1f} s")
    return took


def _scales(values: list[str]) -> dict[str, int]:
    scales = {}
    for value in values:
        service, _, count = value.partition("=")
        if service not in RUNNING or not count.isdigit():
            raise SystemExit(f"--scale takes SERVICE=N with a service of {', '.join(RUNNING)}: {value}")
        scales[service] = int(count)
    return scales


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.containers.compose", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="build, start and set up the compose stack, wait until it is ready")
    start.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    start.add_argument("--no-build", action="store_true", help="use the images as they are")
    images = commands.add_parser("build", help="build the images (of the services named)")
    images.add_argument("services", nargs="*", metavar="SERVICE")
    commands.add_parser("scale", help="run N instances of a service").add_argument("instances", metavar="SERVICE=N")
    stop = commands.add_parser("down", help="stop and remove the containers")
    stop.add_argument("--purge", action="store_true", help="also delete the volumes (Kafka, PostgreSQL, mail)")
    commands.add_parser("status", help="the containers by service")
    args = parser.parse_args(argv)
    try:
        compose = Compose.detect(compose_stack())
        if args.command == "up":
            up(compose, _scales(args.scale), build=not args.no_build)
        elif args.command == "build":
            build(compose, args.services)
        elif args.command == "scale":
            ((service, instances),) = _scales([args.instances]).items()
            scale(compose, service, instances)
        elif args.command == "down":
            down(compose, purge=args.purge)
        else:
            for service, names in sorted(compose.containers().items()):
                print(f"{service:14} {' '.join(names)}")
    except (StackError, subprocess.SubprocessError, OSError, asyncpg.PostgresError) as exc:
        print(f"compose {args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
