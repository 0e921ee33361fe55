"""The short chaos run, part of `make test`: the same code as `make chaos` (deploy/chaos), on the real stack with two
instances of every service, a few hundred orders and about 20 faults of every kind, then every invariant checked.
The seed is fixed so the plan of faults and the load are the same each time (OMS_CHAOS_SEED picks another); the
table and the JSON report say what happened, and a failure prints the command that replays it."""

import os

from deploy.chaos.run import SHORT, run
from tests.local import LOCAL

SEED = int(os.environ.get("OMS_CHAOS_SEED", "20261202"))


async def test_a_short_chaos_run_leaves_every_invariant_intact(stack, pipeline) -> None:
    # given the pipeline, each service with a second instance beside it
    # when orders of every kind flow while instances are killed and frozen, the broker and the database crash and
    # the mail server goes away (wherever they run: processes or containers), and everything is healed afterwards
    report = await run(SEED, SHORT, LOCAL, pipeline, stack)

    # then every invariant holds, every planned fault was injected and the pipeline settled
    path = report.write(LOCAL.state / "chaos")
    print(report.table(), f"\nreport: {path}")
    assert report.passed, f"{report.table()}\nreport: {path}"
    assert report.injected >= SHORT.faults
    assert {f.fault.kind for f in report.faults if f.injected} == {"kill", "stop", "kafka", "postgres", "smtp", "relay"}
