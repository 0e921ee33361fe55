"""Which partition a keyed record goes to: the partition Kafka's Java clients choose (murmur2 of the key's bytes),
so that every writer of a topic puts an order's records on one partition whatever its client.

aiokafka's default partitioner computes the same hash a byte at a time; each service's relay and the simulator hash
every record they publish, and the profiles showed it at 1-4% of a service's samples. This one reads the key four
bytes at a time: the same result (checked against the Java client's `Utils.murmur2`), about a third of the time.
"""

from __future__ import annotations

import random
import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The Java client's `Utils.murmur2` of `data`, as an unsigned 32-bit number."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    for word in struct.unpack_from(f"<{words}I", data):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        rest = data[words * 4 :]
        if tail == 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h = ((h ^ rest[0]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def by_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """A producer's `partitioner`: by the key's hash over all the topic's partitions (an unkeyed record: any
    available one), as aiokafka's default and the Java client choose."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
