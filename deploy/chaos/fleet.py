"""The processes a chaos run faults: two instances of every service, each in its service's consumer group, and a
supervisor that restarts an instance that is down (as systemd or Kubernetes would) unless a fault holds it down.

The first instance of each service is the one `make up` and the tests run (adopted when it runs already); the
second runs beside it on its own HTTP port. The simulated warehouses and carriers stand for the outside world and
are never faulted: only started when they do not run."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local import processes
from deploy.local.settings import LocalStack
from shared.contracts.topics import SERVICES

SECOND_INSTANCE_PORT_SHIFT = 50
# Instances the run starts retry e-mail at most 20 s apart (default 1 h): a message held back by the mail server's
# outages is delivered within the run rather than an hour later. Nothing else differs from `make up`.
RUN_SETTINGS = {"notifications": {"OMS_RETRY_MAX_SECONDS": "20"}}
SUPERVISOR_EVERY = 0.5


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (R, S, T when stopped, Z when dead and not reaped), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


@dataclass
class Instance:
    service: str
    number: str  # its OMS_INSTANCE: what its database sessions and Kafka clients are named after
    process: processes.Process
    held_down: bool = False  # a fault keeps it down: the supervisor leaves it alone
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def session_name(self) -> str:
        return f"oms-{self.service}-{self.number}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.http_port}"

    def pid(self) -> int | None:
        pid = self.process.pid()
        if pid is None or process_state(pid) in (None, "Z"):
            return None
        return pid

    def stopped(self) -> bool:
        pid = self.pid()
        return pid is not None and process_state(pid) == "T"

    def ready(self) -> bool:
        if self.pid() is None or self.stopped():
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:  # noqa: S310 - our own http URL
                return bool(response.status == 200)
        except OSError:
            return False


@dataclass
class Fleet:
    instances: list[Instance]
    simulator: processes.Process
    started: list[processes.Process] = field(default_factory=list)  # what this run started (and stops)
    _supervisor: asyncio.Task[None] | None = None

    @classmethod
    def around(cls, local: LocalStack, running: Mapping[str, processes.Process] | None = None) -> Fleet:
        """Two instances per service; the first ones (and the simulator) are taken from `running` when given
        (the processes a test session started), so that restarting them updates the caller's handles."""
        given = dict(running or {})
        instances = []
        for service in SERVICES:
            settings = RUN_SETTINGS.get(service, {})
            first = given.get(service) or processes.service(local, service, **settings)
            second = processes.Process(
                local,
                f"{service}-2",
                f"services.{service}",
                local.ports.http[service] + SECOND_INSTANCE_PORT_SHIFT,
                env={"OMS_INSTANCE": "2", **settings},
            )
            instances += [Instance(service, "1", first), Instance(service, "2", second)]
        simulator = given.get("simulator") or processes.Process(local, "simulator", "deploy.local.simulator")
        return cls(instances, simulator)

    def named(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def of_service(self, service: str) -> list[Instance]:
        return [i for i in self.instances if i.service == service]

    def by_session(self, application_name: str) -> Instance | None:
        return next((i for i in self.instances if i.session_name == application_name), None)

    def capture_urls(self) -> list[str]:
        return [i.url for i in self.of_service("capture")]

    async def start(self) -> None:
        for process in [*(i.process for i in self.instances), self.simulator]:
            if process.pid() is None:
                process.start()
                self.started.append(process)
        await self.wait_ready(timeout=120)

    async def wait_ready(self, timeout: float) -> list[str]:
        """Wait until every instance answers ready; returns the names of those that did not in time."""
        deadline = time.monotonic() + timeout
        while True:
            late = [i.name for i in self.instances if not await asyncio.to_thread(i.ready)]
            if not late or time.monotonic() > deadline:
                return late
            await asyncio.sleep(0.5)

    def bring_up(self, instance: Instance) -> bool:
        """Start the instance if it is down and no fault holds it down; whether it was started."""
        if instance.held_down or instance.pid() is not None:
            return False
        instance.process.start()
        instance.restarts += 1
        return True

    @contextlib.asynccontextmanager
    async def supervised(self) -> AsyncIterator[None]:
        async def supervise() -> None:
            while True:
                for instance in self.instances:
                    self.bring_up(instance)
                if self.simulator.pid() is None:
                    self.simulator.start()
                await asyncio.sleep(SUPERVISOR_EVERY)

        self._supervisor = asyncio.create_task(supervise(), name="chaos-supervisor")
        try:
            yield
        finally:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor

    async def stop_started(self) -> None:
        """Stop what this run started: the second instances always, the others if they were not running before."""
        second = [i.process for i in self.instances if i.number == "2"]
        for process in {id(p): p for p in [*second, *self.started]}.values():
            await asyncio.to_thread(process.stop)
