"""The KPI definitions, pure (docs/kpis.md): nearest-rank percentiles, on time against the promise with its
tolerance in the promise's time zone, the perfect order both ways (APQC product, SCOR share), first-time fill rates
and backorders, holds, and the cost model over the carriers' rate table."""

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from services.kpis import domain
from services.kpis.costs import CostModel, order_cost
from services.kpis.domain import OrderFacts, Rules
from services.kpis.settings import KpiSettings

RULES = Rules(timezone="Europe/Amsterdam")
PLACED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def delivered(**kw: object) -> OrderFacts:
    facts: dict[str, object] = {
        "order_id": "o",
        "channel": "web",
        "placed_at": PLACED,
        "ordered": {"A": 2},
        "first_outcome": domain.ALLOCATED,
        "first_reserved": {"A": 2},
        "ready_at": PLACED + timedelta(hours=4),
        "delivered_at": PLACED + timedelta(days=2),
        "promised": date(2026, 11, 4),
        "units_shipped": 2,
    }
    return OrderFacts(**{**facts, **kw})  # type: ignore[arg-type]


def test_percentiles_are_the_nearest_rank() -> None:
    assert domain.percentile([], 0.5) is None
    assert domain.percentile([4, 1, 3, 2], 0.5) == 2  # ceil(0.5 x 4) = 2nd smallest
    assert domain.percentile([4, 1, 3, 2], 0.9) == 4  # ceil(0.9 x 4) = 4th
    assert domain.percentile([5], 0.9) == 5


def test_spans_kept_in_bands_give_the_nearest_rank_of_every_duration_counted() -> None:
    rng = random.Random(20261205)
    # Clustered (a busy hour's cycle times), spread over weeks, the same value many times, zero and negative (a
    # channel's clock ahead of ours), and some taken away again.
    seconds = [rng.uniform(0.5, 3.0) for _ in range(3000)] + [rng.uniform(60, 30 * 86400) for _ in range(500)]
    seconds += [1.25] * 200 + [0.0] * 5 + [-2.5, -0.001] + [1e-7, 2e-7]
    spans = domain.Spans()
    for value in seconds:
        spans.add(timedelta(seconds=value).total_seconds(), 1)
    for value in rng.sample(seconds, 700):
        spans.add(timedelta(seconds=value).total_seconds(), -1)
        seconds.remove(value)
    kept = [timedelta(seconds=value).total_seconds() for value in seconds]
    for p in (0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0):
        assert spans.percentile(p) == domain.percentile(kept, p), p
    assert spans.shown() == {
        "orders": len(kept),
        "p50_seconds": domain.percentile(kept, 0.5),
        "p90_seconds": domain.percentile(kept, 0.9),
    }
    for value in kept:
        spans.add(timedelta(seconds=value).total_seconds(), -1)
    assert spans.shown() == {"orders": 0, "p50_seconds": None, "p90_seconds": None}
    assert not spans.bands


def test_an_order_is_on_time_by_the_promised_day_in_the_promises_time_zone_with_the_tolerance() -> None:
    promised = date(2026, 11, 4)
    # 23:30 UTC on the 4th is already the 5th in Amsterdam: a day late
    late_evening = delivered(delivered_at=datetime(2026, 11, 4, 23, 30, tzinfo=UTC), promised=promised)
    assert domain.on_time(delivered(delivered_at=datetime(2026, 11, 4, 22, 30, tzinfo=UTC)), RULES)
    assert not domain.on_time(late_evening, RULES)
    assert domain.on_time(late_evening, Rules(timezone="Europe/Amsterdam", on_time_tolerance_days=1))
    assert not domain.on_time(delivered(promised=None), RULES)


def test_damage_and_document_exceptions_follow_the_configured_reasons_and_words() -> None:
    assert RULES.is_damage("damaged.in_transit") and RULES.is_damage("damaged")
    assert not RULES.is_damage("damagedish") and not RULES.is_damage("size.too_small")
    assert RULES.is_document_exception("Address unknown at destination")
    assert not RULES.is_document_exception("recipient not at home; delivery will be attempted again")


def test_the_perfect_order_is_the_product_of_its_components_and_the_share_meeting_all_four() -> None:
    orders = [
        delivered(),  # perfect
        delivered(delivered_at=PLACED + timedelta(days=5)),  # late
        delivered(damaged=True, returned=True),  # returned damaged
        delivered(units_shipped=1),  # short
        delivered(units_shipped=1, units_cancelled=1),  # one of two units cancelled by the customer: in full
    ]
    figures = domain.report(orders, RULES)["perfect_order"]
    assert figures["components"] == {"on_time": 0.8, "in_full": 0.8, "damage_free": 0.8, "correct_documents": 1.0}
    assert figures["rate_product_of_components"] == 0.512  # 0.8 x 0.8 x 0.8 x 1
    assert figures["rate_all_four"] == 0.4  # 2 of 5


def test_fill_rates_are_first_time_and_backorders_are_counted_by_line() -> None:
    orders = [
        delivered(ordered={"A": 2, "B": 1}, first_reserved={"A": 2, "B": 1}),
        delivered(ordered={"A": 4, "B": 1}, first_outcome=domain.ALLOCATED, first_reserved={"A": 1, "B": 1}),
        delivered(ordered={"C": 5}, first_outcome=domain.BACKORDERED, first_reserved={}),
        delivered(ordered={"D": 1}, first_outcome=None, first_reserved={}),  # not allocated yet: not counted
    ]
    report = domain.report(orders, RULES)
    # lines 5, filled 3 (A, B, B); units 13, reserved 2+1+1+1 = 5; orders 3, filled 1
    assert report["fill_rate"] == {"orders": 3, "line": 0.6, "unit": 0.3846, "order": 0.3333}
    assert report["backorder_rate"] == {"lines": 5, "backordered": 2, "rate": 0.4}


def test_an_unfulfillable_order_is_unfilled_but_not_backordered() -> None:
    report = domain.report([delivered(first_outcome=domain.UNFULFILLABLE, first_reserved={})], RULES)
    assert report["fill_rate"]["line"] == 0.0
    assert report["backorder_rate"]["backordered"] == 0


def test_cycle_times_and_hold_times_count_what_has_happened() -> None:
    held = delivered(held_at=PLACED, hold_ended_at=PLACED + timedelta(hours=3))
    waiting = delivered(held_at=PLACED, ready_at=None, delivered_at=None)
    report = domain.report([delivered(), held, waiting], RULES)
    assert report["cycle_time"]["internal"] == {"orders": 2, "p50_seconds": 4 * 3600.0, "p90_seconds": 4 * 3600.0}
    assert report["cycle_time"]["total"]["orders"] == 2
    assert report["holds"] == {
        "held": 2,
        "on_hold": 1,
        "hold_time": {"orders": 1, "p50_seconds": 3 * 3600.0, "p90_seconds": 3 * 3600.0},
    }
    assert report["orders"] == {"placed": 3, "rejected": 0, "delivered": 2, "cancelled": 0, "open": 1}


def test_a_shipment_costs_its_carrier_rate_and_a_pick_per_line() -> None:
    shipping = KpiSettings().shipping_rules()
    model = CostModel(currency="EUR", per_pick=Decimal("0.35"))
    shipment = {"carrier": "parcelnet", "service": "economy", "lines": {"A": 2, "B": 1}}
    # 2 x 300 g + 400 g = 1000 g to NL (parcelnet near, up to 1000 g: 4.20) + 2 picks x 0.35
    assert order_cost(shipping, model, "NL", [shipment], {"A": 300, "B": 400}) == Decimal("4.90")
    assert order_cost(shipping, model, "NL", [shipment], {"A": 300}) is None  # B's weight unknown
    assert order_cost(shipping, model, "US", [shipment], {"A": 300, "B": 400}) is None  # no zone for it


def test_groups_are_per_channel_when_asked() -> None:
    groups = domain.grouped([delivered(channel="web"), delivered(channel="pos")], RULES, lambda o: o.channel)
    assert [g["group"] for g in groups] == ["pos", "web"]
    assert domain.grouped([delivered()], RULES)[0]["group"] == "all"


def test_order_changes_are_counted_with_the_money_they_made_due_back_and_refunded_per_currency() -> None:
    # given one order changed twice (once applied, 20.00 due back and refunded; once refused), one never changed
    changed = delivered(
        changes_requested=2,
        changes_applied=1,
        changes_refused=1,
        due_back={"EUR": Decimal("20.00")},
        refunded={"EUR": Decimal("20.00")},
    )
    other = delivered(changes_requested=1, changes_applied=1, due_back={"GBP": Decimal("5.5")})
    # when the KPIs are worked out
    changes = domain.report([changed, other, delivered()], RULES)["changes"]
    # then changes are counted by what became of them, and the money per currency
    assert changes == {
        "requested": 3,
        "applied": 2,
        "refused": 1,
        "orders_changed": 2,
        "due_back": {"EUR": "20.00", "GBP": "5.50"},
        "refunded": {"EUR": "20.00"},
    }


def test_an_order_is_in_full_against_what_its_latest_change_left() -> None:
    # given an order of three A, changed to two, which shipped two
    reduced = delivered(ordered={"A": 3}, changed_to={"A": 2}, units_shipped=2)
    # then it is in full; and one whose change added a unit that never shipped is not
    assert domain.in_full(reduced)
    assert not domain.in_full(delivered(ordered={"A": 2}, changed_to={"A": 3}, units_shipped=2))


def test_a_tally_with_orders_taken_away_or_changed_reports_as_the_orders_left_would() -> None:
    # given orders of every kind: delivered, late, short, held, cancelled, changed with money, unpriced
    cancelled = delivered(delivered_at=None, ready_at=None, cancelled=True)
    changed = delivered(changes_requested=2, changes_applied=1, due_back={"EUR": Decimal("10.00")})
    refunded = delivered(changes_applied=1, refunded={"EUR": Decimal("4.50"), "GBP": Decimal("1")})
    orders = [
        delivered(cost=Decimal("4.90")),
        delivered(delivered_at=PLACED + timedelta(days=4), cost=Decimal("7.10")),
        delivered(first_reserved={"A": 1}, units_shipped=1, damaged=True),
        delivered(held_at=PLACED, hold_ended_at=PLACED + timedelta(hours=2), returned=True),
        cancelled,
        changed,
        refunded,
        delivered(first_outcome=domain.UNFULFILLABLE, first_reserved={}, ready_at=None, delivered_at=None),
    ]
    tally = domain.Tally(RULES)
    for o in orders:
        tally.add(o)
    assert tally.report(3) == domain.report(orders, RULES, 3)
    # when some leave and one changes (what its old facts added taken away, its new ones added), each taken away by
    # what it added alone, as the gauges' window keeps it
    for gone in (orders[1], refunded, changed, cancelled):
        tally.count(domain.counted(gone, RULES), -1)
    now_delivered = delivered(held_at=PLACED, hold_ended_at=PLACED + timedelta(hours=5))
    tally.add(now_delivered)
    # then the figures are those of the orders left, the GBP gone with the only order that had it
    left = [orders[0], orders[2], orders[3], now_delivered, orders[7]]
    assert tally.report() == domain.report(left, RULES)
    assert tally.report()["changes"]["refunded"] == {}


def test_orders_alike_share_what_they_add_to_a_tally() -> None:
    # given two orders alike but for their ids and times, and a third with another line
    first = delivered(cost=Decimal("4.90"))
    second = replace(first, order_id=uuid4(), placed_at=PLACED + timedelta(hours=1))
    other = delivered(ordered={"A": 1, "B": 2}, first_reserved={"A": 1, "B": 2}, cost=Decimal("4.90"))
    # then the first two share their counts, which the third does not; the price is kept once
    a, b, c = (domain.counted(o, RULES) for o in (first, second, other))
    assert a.counts is b.counts and a.counts is not c.counts
    assert a.cost is b.cost is c.cost
    assert dict(c.counts)["lines"] == 2 and dict(c.counts)["units"] == 3
