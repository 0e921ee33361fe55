"""An order's priority, scenario by scenario and by property: its components (service level, slack to the
warehouse's cut-off, the promise, customer tier, age), how waiting orders are ranked (priority band, then first
come first served), and scarce stock going to the order ahead."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.allocation.inventory import Inventory
from services.allocation.orders import Allocated, Order
from services.allocation.priority import Arrival, Component, Priority, Ranking, assess, explain, summary
from services.allocation.routing import Network
from services.allocation.settings import DEFAULT_ALLOCATION_FILE, DEFAULT_CARRIERS_FILE, load_priorities
from shared.reference.warehouses import DEFAULT_FILE, load_warehouses

RULES = load_priorities(DEFAULT_ALLOCATION_FILE, DEFAULT_CARRIERS_FILE)  # the configuration the service runs with
WAREHOUSES = load_warehouses(DEFAULT_FILE)
AMS = next(w for w in WAREHOUSES if w.id == "ams")  # cut-off 16:00 Amsterdam time
LOCAL = ZoneInfo("Europe/Amsterdam")
WEDNESDAY = datetime(2027, 2, 10, tzinfo=LOCAL)


def arrival(
    at: datetime, service_level: str = "standard", channel: str = "webshop", email: str = "a@b.test"
) -> Arrival:
    return Arrival(service_level, channel, email, at, AMS.id, AMS.cutoff)


def points(priority: Priority) -> dict[str, int]:
    return {c.name: c.points for c in priority.components}


def test_an_express_order_placed_just_before_the_cutoff_scores_its_level_the_cutoff_and_a_near_promise() -> None:
    # given an express order ten minutes before Amsterdam's 16:00 cut-off on a Wednesday
    priority = assess(arrival(WEDNESDAY.replace(hour=15, minute=50), "express"), RULES)

    # then it scores its level, most of the cut-off points (110 of the 120 minutes' window used) and the promise
    # of Friday (2 days: 3 days sooner than the 5-day horizon, 10 points each)
    assert points(priority) == {"service_level": 300, "cutoff": 91, "promise": 30}
    assert priority.base == 421
    details = {c.name: c.detail for c in priority.components}
    assert details["cutoff"] == "10 min before the 16:00 cut-off at ams"
    assert details["promise"] == "delivery promised 2027-02-12, in 2 days"


def test_the_same_express_order_just_after_the_cutoff_leaves_tomorrow_and_scores_less() -> None:
    priority = assess(arrival(WEDNESDAY.replace(hour=16, minute=5), "express"), RULES)

    # it leaves on Thursday, promised on Monday (5 days): no cut-off points, none for the promise
    assert points(priority) == {"service_level": 300, "cutoff": 0, "promise": 0}


@given(at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)))
def test_a_standard_order_has_the_same_base_whenever_it_arrives_so_standard_orders_stay_first_come_first_served(
    at: datetime,
) -> None:
    assert assess(arrival(at), RULES).base == 0
    assert assess(arrival(at, "express"), RULES).base >= 300 > assess(arrival(at), RULES).base


def test_customer_tiers_come_from_configuration_by_domain_or_channel_and_the_highest_counts() -> None:
    at = WEDNESDAY.replace(hour=9)
    vip = assess(arrival(at, email="Anna@VIP.example"), RULES)
    contract = assess(arrival(at, channel="b2b"), RULES)
    both = assess(arrival(at, channel="b2b", email="boss@vip.example"), RULES)
    nobody = assess(arrival(at, email="anna@elsewhere.example"), RULES)

    assert ("vip", 150) in {(c.detail, c.points) for c in vip.components}
    assert ("b2b_contract", 100) in {(c.detail, c.points) for c in contract.components}
    assert [c.detail for c in both.components if c.name == "tier"] == ["vip"]
    assert "tier" not in points(nobody)
    # the explanation names the tier, never the customer's address
    assert not any("@" in c.detail for p in (vip, contract, both) for c in p.components)


def test_a_customer_buying_on_a_business_account_is_in_the_b2b_contract_tier() -> None:
    at = WEDNESDAY.replace(hour=9)
    on_account = assess(replace(arrival(at), account="ACME-TRADING"), RULES)
    assert ("b2b_contract", 100) in {(c.detail, c.points) for c in on_account.components}
    assert "tier" not in points(assess(arrival(at), RULES))


def test_age_points_grow_while_the_order_waits_up_to_the_cap_and_raise_its_band() -> None:
    ranking = RULES.ranking  # 10 points per hour, at most 300, bands of 100
    arrived = WEDNESDAY.replace(hour=9)
    standard = Priority((Component("service_level", 0, "standard"),))

    assert ranking.score(standard, arrived, arrived) == 0
    assert ranking.score(standard, arrived, arrived + timedelta(hours=10, minutes=59)) == 109
    assert ranking.band(standard, arrived, arrived + timedelta(hours=10, minutes=59)) == 1
    assert ranking.score(standard, arrived, arrived + timedelta(days=5)) == 300


def test_the_explanation_lists_every_component_with_the_age_earned_so_far() -> None:
    arrived = WEDNESDAY.replace(hour=15, minute=50)
    priority = assess(arrival(arrived, "express"), RULES)

    explained = explain(priority, arrived, arrived + timedelta(hours=2), RULES.ranking)

    assert explained["score"] == 441
    assert explained["band"] == 4
    assert [(c["name"], c["points"]) for c in explained["components"]] == [  # type: ignore[attr-defined]
        ("service_level", 300),
        ("cutoff", 91),
        ("promise", 30),
        ("age", 20),
    ]
    assert summary(priority, arrived, arrived + timedelta(hours=2), RULES.ranking) == (
        "priority 441 (band 4: express 300, cutoff 91, promise 30, age 20)"
    )


bases = st.integers(0, 800)
minutes = st.integers(0, 3000)


@given(base_a=bases, base_b=bases, arrived_a=minutes, arrived_b=minutes, now=minutes)
def test_an_order_never_waits_behind_a_later_order_of_the_same_or_a_lower_band(
    base_a: int, base_b: int, arrived_a: int, arrived_b: int, now: int
) -> None:
    ranking = RULES.ranking
    t0 = WEDNESDAY.replace(hour=8)
    a = (Priority((Component("service_level", base_a, "x"),)), t0 + timedelta(minutes=arrived_a), uuid.uuid4())
    b = (Priority((Component("service_level", base_b, "x"),)), t0 + timedelta(minutes=arrived_b), uuid.uuid4())
    at = t0 + timedelta(minutes=max(arrived_a, arrived_b) + now)

    ahead = ranking.turn(*a, at) < ranking.turn(*b, at)

    band_a, band_b = ranking.band(a[0], a[1], at), ranking.band(b[0], b[1], at)
    if band_a > band_b or (band_a == band_b and (a[1], a[2]) < (b[1], b[2])):
        assert ahead
    else:
        assert not ahead
    # and among equal bases, waiting longer never puts an order behind one that came later
    if base_a == base_b and arrived_a < arrived_b:
        assert ahead


def order(lines: dict[str, int], arrived: datetime, service_level: str) -> Order:
    return Order(
        order_id=uuid.uuid4(),
        arrived_at=arrived,
        channel="webshop",
        policy="backorder",
        ship_to={"country": "NL", "postal_code": "1012"},
        service_level=service_level,
        lines=lines,
        priority=assess(arrival(arrived, service_level), RULES),
    )


def test_scarce_stock_goes_to_an_express_order_placed_before_the_cutoff_ahead_of_earlier_standard_orders() -> None:
    # given two standard orders waiting since the morning, and an express one placed ten minutes before the cut-off
    now = WEDNESDAY.replace(hour=15, minute=55)
    inventory = Inventory(Network(WAREHOUSES), ranking=RULES.ranking, clock=lambda: now)
    first = order({"A": 1}, WEDNESDAY.replace(hour=9), "standard")
    second = order({"A": 1}, WEDNESDAY.replace(hour=10), "standard")
    express = order({"A": 1}, WEDNESDAY.replace(hour=15, minute=50), "express")
    for placed in (first, second, express):
        inventory.place(placed)
    assert {o.status for o in (first, second, express)} == {"backordered"}

    # when one unit arrives, then another
    [to_express] = inventory.receive("ams", "A", 1)
    [to_first] = inventory.receive("ams", "A", 1)

    # then the express order gets the first, and the earlier standard order the next: first come first served
    # within the band; the later standard order still waits
    assert isinstance(to_express, Allocated) and to_express.order_id == express.order_id
    assert to_express.reason.endswith("; priority 421 (band 4: express 300, cutoff 91, promise 30, age 0)")
    assert isinstance(to_first, Allocated) and to_first.order_id == first.order_id
    assert second.status == "backordered" and second.backordered == {"A": 1}


def test_without_priorities_every_order_is_in_one_band_and_served_first_come_first_served() -> None:
    assert Ranking().turn(Priority(), WEDNESDAY, uuid.UUID(int=1), None)[0] == 0


def test_priority_points_for_a_service_level_the_promises_do_not_know_are_refused(tmp_path) -> None:
    config = tmp_path / "allocation.json"
    config.write_text('{"priorities": {"service_levels": {"standard": 0, "same_day": 500}}}')

    with pytest.raises(ValueError, match="unknown service levels: \\['same_day'\\]"):
        load_priorities(config, DEFAULT_CARRIERS_FILE)


def test_without_a_priorities_section_every_order_has_the_same_priority(tmp_path) -> None:
    config = tmp_path / "allocation.json"
    config.write_text("{}")
    rules = load_priorities(config, DEFAULT_CARRIERS_FILE)

    express = assess(arrival(WEDNESDAY.replace(hour=15, minute=50), "express"), rules)
    standard = assess(arrival(WEDNESDAY.replace(hour=9)), rules)
    assert express.base == standard.base == 0
    assert rules.ranking.age_points(WEDNESDAY, WEDNESDAY + timedelta(days=3)) == 0
