"""The chaos run's load as drawn from its seed: the spread orders, and a full run's peak on the Kafka intake."""

import random

from deploy.chaos.load import PEAK_AT, Catalogue, draw_orders


def test_a_peak_adds_orders_on_the_kafka_intake_within_one_second_and_leaves_the_spread_orders_as_drawn() -> None:
    catalogue = Catalogue("test")
    spread = draw_orders(random.Random(7), catalogue, 200, 540.0)
    with_peak = draw_orders(random.Random(7), catalogue, 200, 540.0, peak=300)

    assert with_peak[:200] == spread  # a seed replays the same spread orders with or without a peak
    peak = with_peak[200:]
    assert len(peak) == 300
    assert {spec.via for spec in peak} == {"kafka"}
    assert all(540.0 * PEAK_AT <= spec.at <= 540.0 * PEAK_AT + 1 for spec in peak)
    assert len({spec.external_id for spec in with_peak}) == 500
    assert {spec.scenario for spec in peak} > {"single", "cancel_race", "rejected"}  # the same mix of scenarios
