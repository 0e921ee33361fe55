"""`make chaos`: python -m deploy.chaos [--seed N] [--orders 2000 --faults 100 --window 540 --poison 24 --peak 800]

Prints the table, writes the JSON report to $OMS_STATE_DIR/chaos/ (its path is printed), and exits 1 on any
violated invariant. The seed is always printed with the command that replays the run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from dataclasses import replace

from deploy.local.settings import LocalStack

from .run import FULL, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="replays a run (default: a new one)")
    parser.add_argument("--orders", type=int, default=FULL.orders)
    parser.add_argument("--faults", type=int, default=FULL.faults)
    parser.add_argument("--window", type=float, default=FULL.window, help="seconds of load and faults")
    parser.add_argument("--poison", type=int, default=FULL.poison, help="poison records injected")
    parser.add_argument("--peak", type=int, default=FULL.peak, help="orders sent at once besides, on the Kafka intake")
    args = parser.parse_args()
    # The run prints its own account; the clients' retries while the broker is away would drown it.
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    seed = args.seed if args.seed is not None else secrets.randbelow(10**9)
    sizes = {k: getattr(args, k) for k in ("orders", "faults", "window", "poison", "peak")}
    profile = replace(FULL, **sizes)
    if profile != FULL:
        profile = replace(profile, name="custom")
    local = LocalStack.from_env()
    report = asyncio.run(run(seed, profile, local))
    print(report.table())
    path = report.write(local.state / "chaos")
    print(f"report: {path}")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
