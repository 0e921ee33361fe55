"""Consumer lag is counted by one function for `oms topics` and for waiting until a group has caught up: per
partition, the records the group has not committed, all of them where it has committed nothing."""

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from deploy.local.client import records_behind


def test_a_group_is_behind_by_what_it_has_not_committed_and_by_everything_where_it_committed_nothing() -> None:
    read_some, read_all, never_read, unknown = (TopicPartition("oms.t", p) for p in range(4))
    ends = {read_some: 10, read_all: 5, never_read: 7, unknown: 3}
    committed = {
        read_some: OffsetAndMetadata(4, ""),
        read_all: OffsetAndMetadata(5, ""),
        never_read: OffsetAndMetadata(-1, ""),  # what the broker answers for a partition with no commit
    }
    assert records_behind(ends, committed) == {read_some: 6, read_all: 0, never_read: 7, unknown: 3}
