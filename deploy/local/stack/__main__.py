"""python -m deploy.local.stack up|down [--purge]|status"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

import asyncpg

from deploy.local import stack
from deploy.local.settings import LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local.stack", description="Start and stop Kafka, PostgreSQL and the SMTP sink."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start Kafka, PostgreSQL and the SMTP sink")
    commands.add_parser("down", help="stop them").add_argument(
        "--purge", action="store_true", help="also delete Kafka and PostgreSQL data"
    )
    commands.add_parser("status", help="show what runs")
    args = parser.parse_args(argv)
    local = LocalStack.from_env()
    try:
        if args.command == "up":
            asyncio.run(stack.up(local))
        elif args.command == "down":
            stack.down(local, purge=args.purge)
        else:
            stack.status(local)
    except (stack.StackError, subprocess.SubprocessError, OSError, asyncpg.PostgresError) as exc:
        print(f"stack {args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
