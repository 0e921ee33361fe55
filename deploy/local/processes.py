"""Starts and stops the services and the simulator as separate processes, as an operator would run them.

Used by `make up`/`make down`, the demo and the integration tests (which also kill and restart them).
Run: python -m deploy.local.processes start|stop|status
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local import stack
from shared.backbone import kafka_access
from shared.backbone.settings import HTTP_PORTS
from shared.contracts.topics import SERVICES

REPO = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    return Path(os.environ.get("OMS_STATE_DIR", REPO / ".stack"))


@dataclass
class Process:
    """One service instance (or the simulator) running as its own OS process."""

    name: str
    module: str
    http_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return state_dir() / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return state_dir() / "logs" / f"{self.name}.log"

    def start(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # The local stack runs with its development passwords and secrets, which production settings refuse.
        env = {"OMS_ENVIRONMENT": "development", **os.environ, **self.credentials(), **self.env}
        if self.http_port is not None:
            env["OMS_HTTP_PORT"] = str(self.http_port)
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self.popen.pid))

    def credentials(self) -> dict[str, str]:
        """A service's own passwords, from the same place the stack set its database role and Kafka principal."""
        if not self.module.startswith("services."):
            return {}
        service = self.module.split(".")[1]
        return {
            "OMS_DB_PASSWORD": stack.db_password(service),
            "OMS_KAFKA_PASSWORD": kafka_access.local(service).password,
        }

    def pid(self) -> int | None:
        if self.popen is not None:
            return self.popen.pid if self.popen.poll() is None else None
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        return None

    def ready(self) -> bool:
        if self.pid() is None:
            return False
        if self.http_port is None:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            if self.pid() is None:
                raise RuntimeError(f"{self.name} exited; see {self.log_file}:\n{tail(self.log_file)}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_file}:\n{tail(self.log_file)}")

    def signal(self, sig: signal.Signals) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)
        self.signal(signal.SIGKILL)
        self.wait_exit(5.0)
        self.pid_file.unlink(missing_ok=True)

    def wait_exit(self, timeout: float) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(FileNotFoundError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def service(name: str, **env: str) -> Process:
    return Process(name, f"services.{name}", HTTP_PORTS[name], env=dict(env))


def everything() -> list[Process]:
    return [*(service(name) for name in SERVICES), Process("simulator", "deploy.local.simulator")]


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
    processes = everything()
    if args.action == "start":
        start_all(processes)
    elif args.action == "stop":
        for process in reversed(processes):
            process.stop()
    for process in processes:
        pid = process.pid()
        state = "ready" if process.ready() else ("running" if pid else "stopped")
        port = f" http://127.0.0.1:{process.http_port}" if process.http_port else ""
        print(f"{process.name:14} {state:8} pid={pid or '-'}{port}")


if __name__ == "__main__":
    main()
