"""The cluster tests need the three-broker stack and take minutes: they run as `make test-cluster`
(OMS_KAFKA_BROKERS=3), never inside a plain `pytest` or `make test`, whose stack has one broker."""

import os

collect_ignore_glob = [] if os.environ.get("OMS_KAFKA_BROKERS") == "3" else ["test_*.py"]
