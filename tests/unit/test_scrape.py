"""Quantiles from histogram buckets, as PromQL's histogram_quantile estimates them."""

import math

import pytest

from deploy.local import scrape

PAGE = """# TYPE oms_order_intake_to_pick_task_seconds histogram
oms_order_intake_to_pick_task_seconds_bucket{le="0.1"} 10.0
oms_order_intake_to_pick_task_seconds_bucket{le="0.5"} 90.0
oms_order_intake_to_pick_task_seconds_bucket{le="1.0"} 100.0
oms_order_intake_to_pick_task_seconds_bucket{le="+Inf"} 100.0
oms_order_intake_to_pick_task_seconds_sum 30.0
oms_order_intake_to_pick_task_seconds_count 100.0
# TYPE oms_order_status_changes_total counter
oms_order_status_changes_total{status="delivered"} 7.0
oms_order_status_changes_total{status="rejected"} 2.0
"""


def test_the_median_is_interpolated_inside_its_bucket() -> None:
    cumulative = scrape.buckets(scrape.parse(PAGE), "oms_order_intake_to_pick_task_seconds")
    median = scrape.quantile(0.5, cumulative)
    assert median is not None
    # the 50th of 100 observations is the 40th of the 80 in (0.1, 0.5]
    assert median.value == pytest.approx(0.1 + 0.4 * 40 / 80)
    assert (median.lower, median.upper) == (0.1, 0.5)


def test_a_quantile_beyond_the_last_finite_bound_says_only_more_than_it() -> None:
    estimate = scrape.quantile(0.99, [(0.5, 10.0), (math.inf, 100.0)])
    assert estimate is not None and estimate.value == 0.5 and math.isinf(estimate.upper)


def test_no_observations_no_quantile() -> None:
    assert scrape.quantile(0.5, []) is None
    assert scrape.quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]) is None


def test_the_change_between_two_scrapes_counts_only_the_run() -> None:
    before = scrape.parse(PAGE)
    after = scrape.parse(PAGE.replace('{status="delivered"} 7.0', '{status="delivered"} 12.0'))
    assert scrape.by_label(scrape.delta(after, before), "oms_order_status_changes_total", "status") == {
        "delivered": 5.0,
        "rejected": 0.0,
    }
