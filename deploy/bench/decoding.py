"""What a record costs to decode as the services decode it (`shared.backbone.kafka.decode`), topic by topic: records
the running pipeline wrote, read back from the start of each topic the services read, each decoded in a loop, the
best of several passes (the least disturbed by the rest of the machine). Decoding an order's 26 reads was about half
a CPU-ms an order (docs/benchmarks/findings.md, rounds 23 and 25): this is how those figures were taken.

Run against a stack that has carried orders (a quick bench leaves plenty):
    python -m deploy.bench.decoding [--records 600] [--passes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from deploy.bench.run import git, machine
from deploy.local.client import plain_consumer
from deploy.local.settings import LocalStack
from shared.backbone.kafka import Inbound, decode
from shared.backbone.settings import CommonSettings
from shared.contracts import topics
from shared.contracts.topics import SERVICES


@dataclass(frozen=True)
class Cost:
    topic: str
    records: int
    undecodable: int
    mean_bytes: float
    seconds: float  # a record, the best pass


def cost(topic: str, records: Sequence[Any], passes: int, max_bytes: int) -> Cost:
    """The records decoded `passes` times over; the best pass's time per record. Records that do not decode count
    apart (they are timed too: a dead letter's reason is work as well)."""
    undecodable = sum(not isinstance(decode(record, max_bytes), Inbound) for record in records)
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for record in records:
            decode(record, max_bytes)
        best = min(best, time.perf_counter() - started)
    sizes = [len(record.value or b"") for record in records]
    return Cost(topic, len(records), undecodable, sum(sizes) / max(1, len(sizes)), best / max(1, len(records)))


async def sample(local: LocalStack, names: Sequence[str], per_topic: int) -> dict[str, list[Any]]:
    """Up to `per_topic` records of each topic, from the start of its partitions, as the `admin` principal in no
    consumer group (nothing committed, no partition taken from a service)."""
    found: dict[str, list[Any]] = {}
    async with plain_consumer(local.access()) as consumer:
        for name in names:
            partitions = [TopicPartition(name, p) for p in range(topics.BY_NAME[name].partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[Any] = []
            while len(records) < per_topic:
                fetched = await consumer.getmany(timeout_ms=2000, max_records=per_topic)
                if not fetched:
                    break
                records += [record for batch in fetched.values() for record in batch]
            found[name] = records[:per_topic]
    return found


def read_by_services() -> list[str]:
    """The business topics a service reads, in the registry's order."""
    return [t.name for t in topics.BUSINESS_TOPICS if set(t.readers) & set(SERVICES)]


def table(costs: Sequence[Cost], passes: int) -> str:
    lines = [
        f"| topic | records | bytes (mean) | µs a record (best of {passes}) | not decodable |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.topic} | {c.records} | {c.mean_bytes:.0f} | {c.seconds * 1e6:.1f} | {c.undecodable} |"
        for c in costs
        if c.records
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=600, help="records of each topic (600)")
    parser.add_argument("--passes", type=int, default=5, help="passes over them; the best counts (5)")
    args = parser.parse_args()
    local = LocalStack.from_env()
    max_bytes = CommonSettings.model_fields["max_body_bytes"].default
    records = asyncio.run(sample(local, read_by_services(), args.records))
    costs = [cost(name, found, args.passes, max_bytes) for name, found in records.items()]
    print(f"decoding as the services do, commit {git('rev-parse', '--short=12', 'HEAD') or 'unknown'}")
    for what, value in machine().items():
        if what != "everything on this machine":  # the bench's; this probe runs alone in its process
            print(f"- {what}: {value}")
    print(f"- records: up to {args.records} a topic from its start, decoded {args.passes} times over, the best pass")
    print()
    print(table(costs, args.passes))
    empty = [c.topic for c in costs if not c.records]
    if empty:
        print(f"\nno records on: {', '.join(empty)}")


if __name__ == "__main__":
    main()
