"""A real Prometheus on this machine (Debian's `prometheus` package, installed by deploy/local/bootstrap.sh),
scraping the local services with the project's scrape config and alert rules.

The config in this directory names the default ports; `render` writes a copy whose targets are the local stack's
service ports (so OMS_PORT_OFFSET and the per-service variables apply) and whose rule file path is absolute.
`oms stack up` starts one on OMS_PROMETHEUS_PORT (9090 + offset); the tests start their own.
Run alone: python -m deploy.prometheus.local start|stop|status
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deploy.local.settings import LocalStack
from deploy.local.supervisor import Supervised
from shared.backbone import ports

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "prometheus.yml"
RULES = HERE / "alerts.yml"
HOST = "127.0.0.1"


def render(service_ports: Mapping[str, int], scrape_interval: str | None = None) -> str:
    """The project's scrape config with these service ports and an absolute rule file path."""
    text = CONFIG.read_text()
    for service, base in ports.HTTP_BASE.items():
        text = text.replace(f'"{HOST}:{base}"', f'"{HOST}:{service_ports[service]}"')
    text = text.replace("  - alerts.yml", f"  - {RULES}")
    if scrape_interval is not None:
        text = re.sub(r"(?m)^(  (?:scrape|evaluation)_interval:) \S+$", rf"\1 {scrape_interval}", text)
    return text


def binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: run deploy/local/bootstrap.sh (it installs Debian's prometheus)")
    return found


@dataclass
class Prometheus:
    """One Prometheus process with its own config, data directory and port."""

    directory: Path
    port: int
    service_ports: Mapping[str, int]  # what it scrapes
    scrape_interval: str = "5s"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "prometheus.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "prometheus.log"

    @property
    def supervised(self) -> Supervised:
        return Supervised("prometheus", self.pid_file, self.log_file, marker="prometheus")

    def pid(self) -> int | None:
        return self.supervised.pid()

    def start(self, timeout: float = 60.0) -> None:
        if self.pid() is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            config = self.directory / "prometheus.yml"
            config.write_text(render(self.service_ports, self.scrape_interval))
            argv = [
                binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ]
            self.supervised.spawn(argv, self.directory)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.pid() is None:
                raise RuntimeError(f"prometheus exited during start-up\n{self.supervised.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready after {timeout:.0f}s\n{self.supervised.tail()}")
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.supervised.stop(15)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, or an error naming Prometheus's reason."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [time, "number"]}, ...]."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
        return result

    def value(self, expr: str) -> float | None:
        """The single number an aggregating query returns, None when it returns nothing."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


class PrometheusError(Exception):
    """Prometheus refused a query (a parse error, an unknown function) or failed to run it."""


def of_stack(local: LocalStack) -> Prometheus:
    """The operator's instance that `oms stack up` starts: state under the stack's, port OMS_PROMETHEUS_PORT."""
    return Prometheus(local.state / "prometheus", local.ports.prometheus, local.ports.http)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args()
    server = of_stack(LocalStack.from_env())
    if args.action == "start":
        server.start()
    elif args.action == "stop":
        server.stop()
    state = "ready" if server.ready() else ("running" if server.pid() else "stopped")
    print(f"prometheus {state} {server.url}")


if __name__ == "__main__":
    main()
