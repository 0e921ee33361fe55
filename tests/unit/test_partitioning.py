"""The partition of a keyed record is the one Kafka's Java clients choose, whichever client of ours publishes it."""

from __future__ import annotations

import random
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared.backbone import kafka_access, partitioning
from shared.backbone.kafka import make_producer
from shared.backbone.settings import CommonSettings

# `Utils.murmur2` of kafka-clients 4.1.2 (the pinned broker's), run on these keys' UTF-8 bytes, and the partition of
# six the Java producer picks for each (`Utils.toPositive(hash) % 6`).
JAVA = {
    "": (275646681, 3),
    "21": (-973932308, 0),
    "abc": (479470107, 3),
    "foobar": (-790332482, 0),
    "a-little-bit-long-string": (-985981536, 2),
    "a-little-bit-longer-string": (-1486304829, 5),
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": (-58897971, 5),
    "8f3c3b0e-6a51-4be8-9d0a-1d2b6a3f7c11": (23955968, 2),
}


def signed(h: int) -> int:
    return h - (1 << 32) if h >= 1 << 31 else h


@pytest.mark.parametrize("key", JAVA)
def test_the_hash_and_partition_are_the_java_clients(key: str) -> None:
    java_hash, java_partition = JAVA[key]
    assert signed(partitioning.murmur2(key.encode())) == java_hash
    assert partitioning.by_key(key.encode(), list(range(6)), list(range(6))) == java_partition


def test_every_length_and_byte_hashes_as_aiokafkas_default_does() -> None:
    rng = random.Random(20261208)
    keys = [rng.randbytes(n) for n in range(70) for _ in range(20)] + [bytes(range(256)), b"\xff" * 33]
    assert [partitioning.murmur2(k) for k in keys] == [murmur2(k) for k in keys]
    partitions = list(range(6))
    order_ids = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(500)]
    assert [partitioning.by_key(k, partitions, partitions) for k in order_ids] == [
        DefaultPartitioner()(k, partitions, partitions) for k in order_ids
    ]


def test_an_unkeyed_record_goes_to_an_available_partition() -> None:
    assert {partitioning.by_key(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert partitioning.by_key(None, [7], []) == 7  # none available: any of them


async def test_the_services_and_the_tools_producers_partition_by_it() -> None:
    settings = CommonSettings(service="capture", kafka_bootstrap="127.0.0.1:1")
    access = kafka_access.Access("127.0.0.1:1", "capture", "secret", "SCRAM-SHA-256", "")
    for producer in (make_producer(settings), access.producer()):
        assert producer._partitioner is partitioning.by_key
        await producer.stop()  # never started: nothing to flush, and no warning of a producer left open
    assert access.librdkafka_config()["partitioner"] == "murmur2_random"  # librdkafka's name for the Java choice
