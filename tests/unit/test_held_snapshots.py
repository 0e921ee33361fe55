"""The watch of open snapshots times each (session, snapshot) from when it was first seen: a snapshot held open
grows, a session's next snapshot starts again, a closed one is forgotten."""

from shared.backbone.snapshots import HeldSnapshots


def test_no_snapshot_open_is_zero() -> None:
    assert HeldSnapshots().longest([], 100.0) == 0.0


def test_a_snapshot_still_open_counts_from_when_it_was_first_seen() -> None:
    held = HeldSnapshots()
    assert held.longest([("session 7", "1000")], 100.0) == 0.0
    assert held.longest([("session 7", "1000")], 110.0) == 10.0
    assert held.longest([("session 7", "1000"), ("session 8", "1500")], 130.0) == 30.0


def test_a_sessions_next_snapshot_starts_again() -> None:
    held = HeldSnapshots()
    held.longest([("session 7", "1000")], 100.0)
    assert held.longest([("session 7", "1200")], 110.0) == 0.0
    assert held.longest([("session 7", "1200")], 115.0) == 5.0


def test_a_closed_snapshot_is_forgotten_and_not_taken_up_again_if_the_same_values_come_back() -> None:
    held = HeldSnapshots()
    held.longest([("session 7", "1000"), ("slot standby", "900")], 100.0)
    assert held.longest([("session 7", "1000")], 120.0) == 20.0
    assert held.longest([], 130.0) == 0.0
    assert held.longest([("session 7", "1000")], 140.0) == 0.0
