"""Minted ids are UUIDs of version 7: they sort by the millisecond they were minted in, and stay unique."""

import time
import uuid

from shared.contracts.ids import time_ordered_id


def test_an_id_is_a_version_7_uuid_carrying_the_millisecond_it_was_minted_in() -> None:
    before = time.time_ns() // 1_000_000
    minted = time_ordered_id()
    after = time.time_ns() // 1_000_000
    assert (minted.version, minted.variant) == (7, uuid.RFC_4122)
    assert before <= minted.int >> 80 <= after


def test_ids_minted_in_later_milliseconds_sort_after_earlier_ones_and_none_repeats(monkeypatch) -> None:
    now_ns = time.time_ns()
    monkeypatch.setattr("shared.contracts.ids.time.time_ns", lambda: now_ns)
    earlier = [time_ordered_id() for _ in range(1000)]
    now_ns += 1_000_000  # the next millisecond, whatever the machine's clock does meanwhile
    later = [time_ordered_id() for _ in range(1000)]
    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 2000
