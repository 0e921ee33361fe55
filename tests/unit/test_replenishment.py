"""Replenishment on its own: the reorder rules, the forecast, the suggestion a rule raises (one while one is open),
the receipt reference naming a suggestion, and the reorder point demand history suggests."""

import json
import math
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.allocation.replenishment import (
    OnOrder,
    Policy,
    ReorderRule,
    ReorderRules,
    daily_demand,
    on_order_within,
    order_quantity,
    reorder_points,
    review,
    suggested_reorder_point,
    suggestion_named,
)
from services.allocation.settings import load_replenishment

TODAY = date(2026, 12, 3)


def rule(minimum: int = 10, maximum: int = 30, pack: int = 6, lead: int = 5, sku: str = "MUG") -> ReorderRule:
    return ReorderRule("ams", sku, minimum, maximum, pack, "nordic-supply", lead)


def test_stock_falling_below_the_minimum_suggests_ordering_up_to_the_maximum_in_whole_packs() -> None:
    # given 12 on hand of which 4 are reserved: a forecast of 8, below the minimum of 10
    suggestion = review(rule(), "MUG", on_hand=12, reserved=4, open_suggestions=[], today=TODAY)
    # then 22 units would reach the maximum of 30: 4 packs of 6, due after the lead time
    assert suggestion is not None
    assert (suggestion.quantity, suggestion.forecast, suggestion.expected_by) == (24, 8, TODAY + timedelta(days=5))
    assert suggestion.reason == (
        "forecast 8 (on hand 12 - reserved 4 + on order 0) is below the minimum 10: 24 units up to the maximum 30"
        " in packs of 6"
    )


def test_stock_at_the_minimum_suggests_nothing() -> None:
    assert review(rule(), "MUG", on_hand=14, reserved=4, open_suggestions=[], today=TODAY) is None


def test_nothing_more_is_suggested_while_a_suggestion_is_open_for_the_warehouse_and_sku() -> None:
    # given an open suggestion, and demand that took the stock to nothing meanwhile
    open_one = [OnOrder(uuid.uuid4(), 6, TODAY + timedelta(days=5))]
    # then purchasing works on the one it has
    assert review(rule(), "MUG", on_hand=0, reserved=0, open_suggestions=open_one, today=TODAY) is None


def test_only_what_is_due_within_the_lead_time_counts_as_on_order() -> None:
    due = [OnOrder(uuid.uuid4(), 6, TODAY + timedelta(days=5)), OnOrder(uuid.uuid4(), 12, TODAY + timedelta(days=6))]
    assert on_order_within(due, TODAY, lead_time_days=5) == 6


@given(
    minimum=st.integers(0, 500),
    extra=st.integers(0, 500),
    pack=st.integers(1, 48),
    on_hand=st.integers(0, 1000),
    reserved_share=st.floats(0, 1),
)
def test_a_suggestion_is_whole_packs_and_brings_the_forecast_back_to_the_minimum(
    minimum: int, extra: int, pack: int, on_hand: int, reserved_share: float
) -> None:
    reorder = rule(minimum=minimum, maximum=minimum + extra, pack=pack)
    reserved = int(on_hand * reserved_share)
    suggestion = review(reorder, "MUG", on_hand, reserved, [], TODAY)
    forecast = on_hand - reserved
    if forecast >= minimum:
        assert suggestion is None
        return
    assert suggestion is not None
    assert suggestion.quantity > 0 and suggestion.quantity % pack == 0
    assert forecast + suggestion.quantity >= minimum
    # and it never orders a whole pack more than the maximum needs
    assert forecast + suggestion.quantity - pack < max(reorder.maximum, forecast + 1)


@given(forecast=st.integers(-100, 100), pack=st.integers(1, 24))
def test_the_quantity_is_the_smallest_whole_number_of_packs_reaching_the_maximum(forecast: int, pack: int) -> None:
    reorder = rule(minimum=0, maximum=100, pack=pack)
    quantity = order_quantity(forecast, reorder)
    assert quantity == pack * max(1, math.ceil((100 - forecast) / pack))


def test_a_rule_naming_the_sku_wins_over_a_pattern_and_patterns_apply_in_the_order_listed() -> None:
    exact = rule(sku="REPL-1", minimum=1)
    first, second = rule(sku="REPL-*", minimum=2), rule(sku="REPL-?", minimum=3)
    rules = ReorderRules([first, second, exact])
    assert rules.for_stock("ams", "REPL-1") is exact
    assert rules.for_stock("ams", "REPL-2") is first
    assert rules.for_stock("fra", "REPL-2") is None
    assert rules.for_stock("ams", "MUG") is None


@pytest.mark.parametrize(
    ("minimum", "maximum", "pack", "lead"), [(5, 4, 1, 1), (-1, 4, 1, 1), (1, 4, 0, 1), (1, 4, 1, -1)]
)
def test_a_rule_that_cannot_be_followed_is_refused(minimum: int, maximum: int, pack: int, lead: int) -> None:
    with pytest.raises(ValueError, match="reorder rule for MUG at ams"):
        rule(minimum=minimum, maximum=maximum, pack=pack, lead=lead)


def test_rules_come_from_the_allocation_file_and_name_configured_warehouses(tmp_path: Path) -> None:
    config = tmp_path / "allocation.json"
    entry = {"warehouse": "ams", "sku": "MUG", "minimum": 2, "maximum": 8, "supplier": "s", "lead_time_days": 3}
    config.write_text(json.dumps({"replenishment": {"demand_window_days": 14, "rules": [entry]}}))
    policy = load_replenishment(config, ["ams"])
    assert policy.rules.for_stock("ams", "MUG") == ReorderRule("ams", "MUG", 2, 8, 1, "s", 3)
    assert (policy.demand_window_days, policy.service_factor) == (14, 1.65)
    with pytest.raises(ValueError, match="unknown warehouses: \\['ams'\\]"):
        load_replenishment(config, ["fra"])


def test_a_receipt_names_a_suggestion_by_its_id_alone_or_followed_by_its_own_numbering() -> None:
    suggestion_id = uuid.uuid4()
    assert suggestion_named(str(suggestion_id)) == suggestion_id
    assert suggestion_named(f"{suggestion_id}/2") == suggestion_id
    assert suggestion_named(f"GR-{suggestion_id}") is None
    assert suggestion_named(f"{suggestion_id}-2") is None
    assert suggestion_named("GR-2026-0001") is None


def test_daily_demand_fills_days_without_demand_and_starts_at_the_first_day_demanded() -> None:
    units = {TODAY - timedelta(days=2): 4, TODAY: 2}
    assert daily_demand(units, first_day=TODAY - timedelta(days=2), today=TODAY, window_days=28) == [4, 0, 2]
    assert daily_demand(units, first_day=TODAY - timedelta(days=90), today=TODAY, window_days=3) == [4, 0, 2]


def test_steady_demand_suggests_average_demand_over_the_lead_time_with_no_margin() -> None:
    assert suggested_reorder_point([3] * 10, lead_time_days=5, service_factor=1.65) == 15


def test_varying_demand_adds_a_safety_margin_for_the_variation_over_the_lead_time() -> None:
    # average 3, standard deviation 1 (2 and 4 alternating), lead time 4 days: 12 + 1.65 x 1 x 2 = 15.3 -> 16
    assert suggested_reorder_point([2, 4] * 5, lead_time_days=4, service_factor=1.65) == 16


@given(daily=st.lists(st.integers(0, 200), min_size=1, max_size=60), lead=st.integers(0, 60))
def test_the_reorder_point_covers_average_demand_over_the_lead_time_and_grows_with_it(
    daily: list[int], lead: int
) -> None:
    point = suggested_reorder_point(daily, lead, 1.65)
    assert point >= math.floor(sum(daily) * lead / len(daily))
    assert suggested_reorder_point(daily, lead + 1, 1.65) >= point
    assert suggested_reorder_point(daily, lead, 2.33) >= point


def test_reorder_points_are_reported_for_skus_with_a_rule_only() -> None:
    policy = Policy(ReorderRules([rule(sku="REPL-*", lead=2)]), demand_window_days=7)
    first = TODAY - timedelta(days=1)
    history = [("ams", "REPL-1", first, 6, first), ("ams", "REPL-1", TODAY, 2, first), ("ams", "MUG", TODAY, 9, TODAY)]
    points = {p.sku: p for p in reorder_points(policy, history, also=[("ams", "REPL-2")], today=TODAY)}
    assert sorted(points) == ["REPL-1", "REPL-2"]
    # average 4 over 2 days, deviation 2, lead 2: 8 + 1.65 x 2 x 1.414 = 12.67 -> 13
    assert (points["REPL-1"].suggested, points["REPL-1"].average_daily_demand, points["REPL-1"].days) == (13, 4.0, 2)
    assert points["REPL-2"].suggested == 0
