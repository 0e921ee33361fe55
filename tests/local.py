"""The local stack the tests run against: its settings, read once for the whole session and passed down from
here, and a client of its running pipeline (publish as an outside party, wait for consumer groups)."""

from deploy.local.client import PipelineClient
from deploy.local.settings import LocalStack

LOCAL = LocalStack.from_env()
client = PipelineClient(LOCAL)
