"""The local stack the tests run against: its settings, read once for the whole session and passed down from
here, and a client of its running pipeline (publish as an outside party, wait for consumer groups).

OMS_TEST_STACK picks where Kafka and PostgreSQL run: `native` (the default), processes started by
deploy/local/stack; `containers`, containers started by testcontainers from the project's images
(deploy/containers/session.py)."""

import os

from deploy.containers.session import session_settings
from deploy.local.client import PipelineClient
from deploy.local.settings import LocalStack

STACKS = ("native", "containers")
STACK = os.environ.get("OMS_TEST_STACK") or "native"
if STACK not in STACKS:
    raise ValueError(f"OMS_TEST_STACK={STACK}: one of {', '.join(STACKS)}")

LOCAL = session_settings() if STACK == "containers" else LocalStack.from_env()
client = PipelineClient(LOCAL)
