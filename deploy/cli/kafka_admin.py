"""Read-only questions to the broker for `oms topics` and `oms dlq`: partitions, end offsets, group lag,
and reading a topic from its beginning up to the end it had when asked (so a growing topic cannot keep
the reader going forever)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from deploy.local.client import admin_client, plain_consumer, records_behind
from shared.backbone.kafka import partitions
from shared.backbone.kafka_access import Access

SERVICE_GROUP_PREFIX = "oms-"


@dataclass(frozen=True)
class TopicState:
    name: str
    end_offsets: dict[int, int]
    lag: dict[str, dict[int, int]]  # group -> partition -> records not committed yet

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.name,
            "partitions": len(self.end_offsets),
            "end_offsets": {str(p): o for p, o in sorted(self.end_offsets.items())},
            "lag": {
                g: {"total": sum(per.values()), **{str(p): n for p, n in sorted(per.items())}}
                for g, per in self.lag.items()
            },
        }


async def topic_states(access: Access, prefix: str = "oms.", all_groups: bool = False) -> list[TopicState]:
    """Every topic named with the prefix, its end offsets and the lag of each consumer group reading it (on the
    partitions the group has committed to)."""
    async with admin_client(access) as admin, plain_consumer(access) as consumer:
        names = sorted(n for n in await admin.list_topics() if n.startswith(prefix))
        tps = await partitions(admin, names)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        groups = sorted(g[0] for g in await admin.list_consumer_groups())
        if not all_groups:
            groups = [g for g in groups if g.startswith(SERVICE_GROUP_PREFIX)]
        lag: dict[str, dict[str, dict[int, int]]] = {}
        for group in groups:
            committed = {tp: c for tp, c in (await admin.list_consumer_group_offsets(group)).items() if c.offset >= 0}
            behind = records_behind({tp: end for tp, end in ends.items() if tp in committed}, committed)
            for tp, records in behind.items():
                lag.setdefault(tp.topic, {}).setdefault(group, {})[tp.partition] = records
    return [
        TopicState(name, {tp.partition: ends[tp] for tp in tps if tp.topic == name}, lag.get(name, {}))
        for name in names
    ]


async def read_to_end(
    access: Access, topics: Iterable[str], progress: Callable[[int, int], None] | None = None
) -> list[Any]:
    """Every record of the topics, from the beginning to the end offsets seen at the start."""
    async with admin_client(access) as admin, plain_consumer(access) as consumer:
        tps = await partitions(admin, topics)
        if not tps:
            return []
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end > starts[tp]}
        total = sum(ends[tp] - starts[tp] for tp in ends)
        records: list[Any] = []
        if not ends:
            return records
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        remaining = set(ends)
        while remaining:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                records.extend(r for r in batch if r.offset < ends[tp])
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if progress is not None:
                progress(len(records), total)
        return records
