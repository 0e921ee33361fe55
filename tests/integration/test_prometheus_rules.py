"""The project's Prometheus files pass Prometheus's own checks: the scrape config, the alert rules, and the
alert rules' unit tests (deploy/prometheus/alerts_test.yml), with promtool from Debian's package."""

import subprocess

import pytest

from deploy.prometheus import local
from tests.local import LOCAL

PROMETHEUS_DIR = local.HERE


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [local.binary("promtool"), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check config", "check rules", "test rules"],
)
def test_promtool_accepts(args) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_local_copy_with_shifted_ports_is_valid_too(tmp_path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(local.render(LOCAL.ports.http, scrape_interval="1s"))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
