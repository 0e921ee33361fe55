"""`oms topics`: the project's topics, their partitions and end offsets, and each service group's lag;
`--flow` draws who writes and who reads each topic."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from deploy.cli.kafka_admin import topic_states
from deploy.cli.output import console, emit_json, errors, table
from shared.contracts import topology


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "topics",
        parents=[common],
        help="topics, partitions, end offsets and consumer lag",
        description="Every oms.* topic with its partitions, the sum of its end offsets, and for each consumer "
        "group reading it the records not yet committed (lag). --json gives the numbers per partition.",
    )
    parser.add_argument("--all-groups", action="store_true", help="include groups other than the services' (oms-*)")
    parser.add_argument(
        "--flow", action="store_true", help="draw who writes and who reads each topic (Mermaid, from the registry)"
    )
    parser.set_defaults(run=topics)


def topics(args: argparse.Namespace) -> int:
    if args.flow:
        print(topology.mermaid(), end="")
        return 0
    with errors.status("asking the broker"):
        states = asyncio.run(topic_states(args.settings.local.access(), all_groups=args.all_groups))
    if args.json:
        emit_json([s.as_json() for s in states])
        return 0
    console.print(
        table(
            None,
            ["topic", "partitions", "end offsets", "lag by group"],
            [
                [
                    s.name,
                    len(s.end_offsets),
                    sum(s.end_offsets.values()),
                    ", ".join(f"{group} {sum(per.values())}" for group, per in sorted(s.lag.items())) or "-",
                ]
                for s in states
            ],
        )
    )
    return 0
