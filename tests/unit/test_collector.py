"""A service's garbage collector, as `serve` settles it before serving: what was made while starting is left
out of the collector's scans, and young objects are collected less often than Python's default."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from shared.backbone.collector import YOUNG_COLLECTION_EVERY, LongLived, settle_collector


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_what_lives_from_the_start_is_left_out_of_the_scans_and_young_objects_are_collected_less_often(
    collector,
) -> None:
    # given a process that has started (its modules and objects loaded), nothing frozen yet
    gc.unfreeze()
    gc.collect()  # garbage left by whatever ran before is not what lives from the start
    alive = len(gc.get_objects())
    # when the collector is settled
    settle_collector()
    # then what was alive is no longer scanned, and the youngest generation waits for more allocations
    assert gc.get_freeze_count() >= alive * 0.95
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY > 700


class Kept:
    """Something a process keeps, able to take part in a cycle."""

    def __init__(self) -> None:
        self.other: object = None


def test_what_a_process_keeps_is_frozen_once_built_and_a_full_collection_frees_frozen_cycles_once_due(
    collector,
) -> None:
    clock = [0.0]
    long_lived = LongLived(full_every=3600.0, clock=lambda: clock[0])
    gc.unfreeze()
    # given a window of facts built, and a cycle that became garbage after it had grown old
    window = [Kept() for _ in range(10_000)]
    cycle = Kept()
    cycle.other = [cycle, Kept()]
    in_the_cycle = weakref.ref(cycle.other[1])
    gc.collect(1)
    gc.collect(1)  # survived the young collections: in the oldest generation, as after a while in a service
    del cycle
    # when it settles before a full collection is due
    long_lived.settle()
    # then the window is out of the collector's scans, and so is the old cycle, which waits
    oldest = {id(o) for o in gc.get_objects(2)}
    assert not any(id(kept) in oldest for kept in window)
    assert gc.get_freeze_count() >= len(window)
    gc.collect()
    assert in_the_cycle() is not None
    # when an hour has passed: everything unfrozen and collected in full, the cycle freed, what is kept frozen again
    clock[0] = 3600.0
    long_lived.settle()
    assert in_the_cycle() is None
    assert gc.get_freeze_count() >= len(window)
    assert len(window) == 10_000
