"""`make test` keeps the native stack unless OMS_TEST_STACK=containers asks for containers: then, through the
project's own scripts, the container engine, its API and the two images are made ready first, and the containers
session's own tests run beside the integration and end-to-end suites."""

import os
import subprocess

from deploy.local.settings import REPO

READY_ON_CONTAINERS = [
    "bash deploy/containers/bootstrap.sh install",
    "bash deploy/containers/bootstrap.sh api-start",
    ".venv/bin/python -m deploy.containers.compose build kafka-1 postgres",
]


def planned(*args: str, **env: str) -> list[str]:
    """The commands `make test-integration` would run (a dry run: nothing is run)."""
    clean = {k: v for k, v in os.environ.items() if k != "OMS_TEST_STACK"}
    result = subprocess.run(
        ["make", "--dry-run", "--silent", "test-integration", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.strip() for line in result.stdout.splitlines()]


def test_by_default_the_integration_tier_runs_on_the_native_stack_and_touches_no_container() -> None:
    commands = planned()
    assert commands[-1] == ".venv/bin/pytest tests/integration tests/e2e"
    assert not [c for c in commands if "containers" in c]


def test_on_containers_the_engine_its_api_and_the_images_are_made_ready_before_the_same_suites() -> None:
    for commands in (planned(OMS_TEST_STACK="containers"), planned("OMS_TEST_STACK=containers")):
        assert commands[-1] == ".venv/bin/pytest tests/integration tests/e2e tests/containers"
        ready = [c for c in commands if c in READY_ON_CONTAINERS]
        assert ready == READY_ON_CONTAINERS  # in this order, before the tests
