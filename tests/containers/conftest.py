"""The containers test stack's own tests need the machine's container engine: they run in
`OMS_TEST_STACK=containers make test` (beside the integration and end-to-end suites on that stack), never inside a
plain `pytest` or the default `make test`."""

import os

collect_ignore_glob = [] if os.environ.get("OMS_TEST_STACK") == "containers" else ["test_*.py"]
