"""A service's garbage collector, as `serve` settles it before serving: what was made while starting is left
out of the collector's scans, and young objects are collected less often than Python's default."""

import gc
from collections.abc import Iterator

import pytest

from shared.backbone.collector import YOUNG_COLLECTION_EVERY, settle_collector


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
