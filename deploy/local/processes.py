"""Starts and stops the services and the simulator as separate processes, as an operator would run them, under
the stack's one supervisor (deploy/local/supervisor.py).

Used by `make up`/`make down`, the demo and the integration tests (which also kill and restart them).
Run: python -m deploy.local.processes start|stop|status
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.settings import REPO, LocalStack
from deploy.local.supervisor import BEHIND_THE_ORDER_PATH, Supervised
from shared.contracts.topics import ORDER_PATH, SERVICES

__all__ = ["REPO", "Process", "everything", "service", "start_all"]


@dataclass
class Process:
    """One service instance (or the simulator) running as its own OS process, against the local stack `local`."""

    local: LocalStack
    name: str
    module: str
    http_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def supervised(self) -> Supervised:
        return Supervised(self.name, self.pid_file, self.log_file, marker=self.module)

    @property
    def pid_file(self) -> Path:
        return self.local.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.local.logs_dir / f"{self.name}.log"

    @property
    def service_name(self) -> str | None:
        """The service this process is an instance of; None for the simulator."""
        return self.module.split(".")[1] if self.module.startswith("services.") else None

    @property
    def niceness(self) -> int:
        """0 for a service on the order path, and for the simulator: it stands in for warehouses and carriers,
        whose reports an order waits for on its way to delivered and which run on machines of their own. Starved
        behind the path at a peak, its sends timed out and were sent again (4,811 times in a run), and orders were
        delivered late (round 33). What only follows the path runs behind it."""
        if self.service_name is None or self.service_name in ORDER_PATH:
            return 0
        return BEHIND_THE_ORDER_PATH

    def start(self) -> None:
        self.supervised.spawn(
            [sys.executable, "-m", self.module], cwd=REPO, env=self.environment(), niceness=self.niceness
        )

    def environment(self) -> dict[str, str]:
        """The process's environment: this one's, with the local stack's addresses and, for a service, the
        passwords the stack gave its database role and Kafka principal (passed down, not read again)."""
        # The local stack runs with its development passwords and secrets, which production settings refuse.
        env = {"OMS_ENVIRONMENT": "development", **os.environ}
        if self.service_name is not None:
            env.update(self.local.service_environment(self.service_name))
        else:  # the simulator reads the local stack's settings as a tool does: these same ones
            env.update(self.local.environment())
        if self.http_port is not None:
            env["OMS_HTTP_PORT"] = str(self.http_port)
        return {**env, **self.env}

    def pid(self) -> int | None:
        return self.supervised.pid()

    def exit_status(self) -> int | None:
        """How the instance this process started last ended (negative: the signal), once it has."""
        return self.supervised.exit_status()

    def ready(self) -> bool:
        if self.pid() is None:
            return False
        if self.http_port is None:
            return True
        try:
            with urllib.request.urlopen(f"http://{self.local.host}:{self.http_port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            if self.pid() is None:
                raise RuntimeError(f"{self.name} exited; see {self.log_file}:\n{self.supervised.tail(30)}")
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.name} not ready after {timeout:.0f}s; see {self.log_file}:\n{self.supervised.tail(30)}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        self.supervised.stop(timeout)


def service(local: LocalStack, name: str, **env: str) -> Process:
    return Process(local, name, f"services.{name}", local.ports.http[name], env=dict(env))


def everything(local: LocalStack) -> list[Process]:
    return [*(service(local, name) for name in SERVICES), Process(local, "simulator", "deploy.local.simulator")]


def start_all(processes: list[Process]) -> None:
    for process in processes:
        if process.pid() is None:
            process.start()
    for process in processes:
        process.wait_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args()
    processes = everything(LocalStack.from_env())
    if args.action == "start":
        start_all(processes)
    elif args.action == "stop":
        for process in reversed(processes):
            process.stop()
    for process in processes:
        pid = process.pid()
        state = "ready" if process.ready() else ("running" if pid else "stopped")
        port = f" http://{process.local.host}:{process.http_port}" if process.http_port else ""
        print(f"{process.name:14} {state:8} pid={pid or '-'}{port}")


if __name__ == "__main__":
    main()
