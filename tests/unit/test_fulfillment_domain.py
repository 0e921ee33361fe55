"""Fulfillment's pure rules, clock fixed: promised delivery dates, carrier choice, pick tasks, cancellation."""

import uuid
from datetime import date, datetime, time
from decimal import Decimal

import pytest

from services.capture.settings import CaptureSettings
from services.fulfillment import domain
from services.fulfillment.rates import ShippingRules
from services.fulfillment.settings import FulfillmentSettings
from shared.contracts.events import ItemQuantity
from shared.reference import promises

CUTOFF = time(16, 0)
CHRISTMAS = ["2026-12-25", "2026-12-26"]


def band(up_to: int, price: str) -> dict[str, object]:
    return {"up_to_grams": up_to, "price": price}


def rules(**overrides: object) -> ShippingRules:
    """A small rate table: a slow cheap post, a two-day courier, and a dear next-day courier."""
    document: dict[str, object] = {
        "calendar": {"timezone": "Europe/Amsterdam", "holidays": CHRISTMAS},
        "promise_business_days": {"standard": 4, "express": 2, "overnight": 1},
        "carriers": [
            {
                "code": "slowpost",
                "name": "Slow Post",
                "tracking": {"scheme": "luhn", "prefix": "SP"},
                "tracking_url": "https://slow.example/{tracking_number}",
                "zones": {"home": ["NL", "BE"], "abroad": ["DE", "US"]},
                "services": [
                    {
                        "code": "letterbox",
                        "transit_days": {"home": 3, "abroad": 5},
                        "rates": {"home": [band(2000, "3.00")], "abroad": [band(2000, "6.00")]},
                    }
                ],
            },
            {
                "code": "twoday",
                "name": "Two Day",
                "tracking": {"scheme": "s10", "prefix": "CP", "suffix": "NL"},
                "tracking_url": "https://twoday.example/?n={tracking_number}",
                "zones": {"eu": ["NL", "BE", "DE"]},
                "services": [
                    {
                        "code": "parcel",
                        "transit_days": {"eu": 2},
                        "rates": {"eu": [band(1000, "5.00"), band(10000, "9.00")]},
                    }
                ],
            },
            {
                "code": "dawn",
                "name": "Dawn Couriers",
                "tracking": {"scheme": "ups", "prefix": "1ZDAWN0001"},
                "tracking_url": "https://dawn.example/t/{tracking_number}",
                "zones": {"eu": ["NL", "BE", "DE"], "world": ["US"]},
                "services": [
                    {
                        "code": "next-day",
                        "transit_days": {"eu": 1, "world": 3},
                        "rates": {"eu": [band(30000, "8.50")], "world": [band(30000, "40.00")]},
                    }
                ],
            },
        ],
    }
    document.update(overrides)
    return ShippingRules.model_validate(document)


RULES = rules()


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


# ---- promised delivery: cut-off, weekends, holidays ----


def test_an_express_order_before_the_cutoff_leaves_today_and_after_it_gets_the_next_business_days_promise() -> None:
    # Wednesday 10 February 2027; the warehouse's cut-off is 16:00 Amsterdam time
    assert promises.promised_delivery("express", at("2027-02-10T15:59+01:00"), CUTOFF, RULES) == date(2027, 2, 12)
    assert promises.promised_delivery("express", at("2027-02-10T16:00+01:00"), CUTOFF, RULES) == date(2027, 2, 15)
    assert promises.promised_delivery("express", at("2027-02-10T17:30+01:00"), CUTOFF, RULES) == date(2027, 2, 15)


def test_the_cutoff_is_the_warehouses_local_time_whatever_the_clocks_zone_and_the_season() -> None:
    assert promises.ship_date(at("2027-02-10T14:59Z"), CUTOFF, RULES.calendar) == date(2027, 2, 10)  # 15:59 CET
    assert promises.ship_date(at("2027-02-10T15:01Z"), CUTOFF, RULES.calendar) == date(2027, 2, 11)  # 16:01 CET
    assert promises.ship_date(at("2027-07-07T13:59Z"), CUTOFF, RULES.calendar) == date(2027, 7, 7)  # 15:59 CEST
    assert promises.ship_date(at("2027-07-07T14:01Z"), CUTOFF, RULES.calendar) == date(2027, 7, 8)  # 16:01 CEST


def test_weekends_are_skipped_when_leaving_and_when_counting_days_to_delivery() -> None:
    friday_evening, saturday = at("2027-02-12T18:00+01:00"), at("2027-02-13T09:00+01:00")
    assert promises.ship_date(friday_evening, CUTOFF, RULES.calendar) == date(2027, 2, 15)  # Monday
    assert promises.ship_date(saturday, CUTOFF, RULES.calendar) == date(2027, 2, 15)
    # Thursday morning, express (2 business days): Friday, then Monday
    assert promises.promised_delivery("express", at("2027-02-11T09:00+01:00"), CUTOFF, RULES) == date(2027, 2, 15)
    # Friday evening, overnight: leaves Monday, arrives Tuesday
    assert promises.promised_delivery("overnight", friday_evening, CUTOFF, RULES) == date(2027, 2, 16)
    # standard (4 business days) from Tuesday: Wednesday, Thursday, Friday, Monday
    assert promises.promised_delivery("standard", at("2027-02-09T09:00+01:00"), CUTOFF, RULES) == date(2027, 2, 15)


def test_configured_holidays_are_no_business_days() -> None:
    # Christmas Eve (Thursday) after the cut-off: Friday 25 is a holiday, then the weekend; it leaves Monday 28
    christmas_eve = at("2026-12-24T16:30+01:00")
    assert promises.ship_date(christmas_eve, CUTOFF, RULES.calendar) == date(2026, 12, 28)
    assert promises.promised_delivery("overnight", christmas_eve, CUTOFF, RULES) == date(2026, 12, 29)
    # Wednesday 23 in the morning, express: Thursday 24, then (25 holiday, weekend) Monday 28
    assert promises.promised_delivery("express", at("2026-12-23T10:00+01:00"), CUTOFF, RULES) == date(2026, 12, 28)
    # without the holiday list, the same order is promised for Friday 25
    workaholic = rules(calendar={"timezone": "Europe/Amsterdam", "holidays": []})
    assert promises.promised_delivery("express", at("2026-12-23T10:00+01:00"), CUTOFF, workaholic) == date(2026, 12, 25)


# ---- carrier choice: the cheapest service that keeps the promise ----

MONDAY = date(2027, 2, 15)


def choose(level: str, country: str = "NL", grams: int = 800, leaves: date = MONDAY) -> domain.ServiceChoice:
    promise = promises.add_business_days(leaves, RULES.promise_business_days[level], RULES.calendar)  # type: ignore[index]
    choice = domain.choose_service(RULES, country, grams, leaves, promise)
    assert choice is not None
    return choice


def test_the_cheapest_service_that_delivers_by_the_promise_is_chosen_for_each_service_level() -> None:
    standard, express, overnight = choose("standard"), choose("express"), choose("overnight")
    assert (standard.carrier.code, standard.service, standard.price) == ("slowpost", "letterbox", Decimal("3.00"))
    assert (express.carrier.code, express.service, express.price) == ("twoday", "parcel", Decimal("5.00"))
    assert (overnight.carrier.code, overnight.service, overnight.price) == ("dawn", "next-day", Decimal("8.50"))
    assert standard.delivery == date(2027, 2, 18) <= standard.promised_delivery == date(2027, 2, 19)
    assert all(c.keeps_promise for c in (standard, express, overnight))


def test_the_weight_band_decides_the_price_and_a_package_too_heavy_for_a_service_excludes_it() -> None:
    # 1.5 kg: the two-day courier's second band (9.00) is dearer than the next-day courier (8.50)
    assert choose("express", grams=1500).carrier.code == "dawn"
    # 5 kg: too heavy for the slow post's letterbox (2 kg), so even a standard order goes with the cheaper courier
    heavy = choose("standard", grams=5000)
    assert (heavy.carrier.code, heavy.price) == ("dawn", Decimal("8.50"))
    assert {o.carrier.code for o in domain.service_options(RULES, "NL", 5000, MONDAY)} == {"twoday", "dawn"}


def test_the_destination_zone_decides_which_carriers_and_transit_times_apply() -> None:
    # to the US only the slow post (5 days abroad) and Dawn (3 days) go; standard (4 days) needs Dawn
    us = choose("standard", country="US")
    assert (us.carrier.code, us.zone, us.price) == ("dawn", "world", Decimal("40.00"))
    assert domain.choose_service(RULES, "JP", 800, MONDAY, date(2027, 3, 1)) is None


def test_a_parcel_packed_after_the_cutoff_needs_a_faster_service_to_keep_the_promise_made_at_release() -> None:
    # released Monday morning with an express promise for Wednesday, packed Monday evening: it leaves Tuesday
    promise = promises.promised_delivery("express", at("2027-02-15T09:00+01:00"), CUTOFF, RULES)
    leaves = promises.ship_date(at("2027-02-15T17:00+01:00"), CUTOFF, RULES.calendar)
    choice = domain.choose_service(RULES, "NL", 800, leaves, promise)
    assert choice is not None
    assert (promise, leaves) == (date(2027, 2, 17), date(2027, 2, 16))
    assert (choice.carrier.code, choice.delivery, choice.promised_delivery) == ("dawn", promise, promise)


def test_when_no_service_can_keep_the_promise_the_fastest_is_chosen_and_the_promise_moves_to_its_delivery() -> None:
    promise = promises.add_business_days(MONDAY, 1, RULES.calendar)
    choice = domain.choose_service(RULES, "US", 800, MONDAY, promise)
    assert choice is not None
    assert (choice.carrier.code, choice.delivery) == ("dawn", date(2027, 2, 18))
    assert choice.promised_delivery == choice.delivery
    assert not choice.keeps_promise


def test_equal_prices_go_to_the_sooner_delivery_then_by_name_so_the_choice_is_stable() -> None:
    document = rules().model_dump(mode="json")
    document["carriers"][1]["services"][0]["rates"]["eu"][0]["price"] = "3.00"  # two-day as cheap as the slow post
    choice = domain.choose_service(ShippingRules.model_validate(document), "NL", 800, MONDAY, date(2027, 2, 19))
    assert choice is not None and choice.carrier.code == "twoday"


def test_the_shipped_rate_table_serves_every_shippable_country_at_every_service_level() -> None:
    configured = FulfillmentSettings().shipping_rules()
    monday = date(2027, 2, 15)
    for country in CaptureSettings().shippable_countries:
        for level, days in configured.promise_business_days.items():
            promise = promises.add_business_days(monday, days, configured.calendar)
            choice = domain.choose_service(configured, country, 2500, monday, promise)
            assert choice is not None, (country, level)
    nearby = domain.choose_service(configured, "NL", 900, monday, date(2027, 2, 22))
    assert nearby is not None and (nearby.carrier.code, nearby.service) == ("parcelnet", "economy")


def test_a_rate_table_with_descending_bands_or_an_unknown_zone_is_refused() -> None:
    broken = rules().model_dump(mode="json")
    broken["carriers"][1]["services"][0]["rates"]["eu"] = [band(5000, "9.00"), band(1000, "5.00")]
    with pytest.raises(ValueError, match="ascending"):
        ShippingRules.model_validate(broken)
    broken = rules().model_dump(mode="json")
    broken["carriers"][0]["services"][0]["rates"]["mars"] = [band(1000, "1.00")]
    with pytest.raises(ValueError, match="mars"):
        ShippingRules.model_validate(broken)


# ---- pick tasks: picking, short picks, shipping, delivery ----


def lines(*pairs: tuple[str, int]) -> list[ItemQuantity]:
    return [ItemQuantity(sku=s, quantity=q) for s, q in pairs]


def test_warehouse_reports_move_a_task_forward_only() -> None:
    assert domain.next_status("released", "picked") == "picked"
    assert domain.next_status("picked", "packed") == "packed"
    assert domain.next_status("released", "short_picked") == "short_picked"
    assert domain.next_status("picked", "short_picked", picked_anything=False) == "nothing_picked"
    assert domain.next_status("short_picked", "packed") == "packed"
    assert domain.next_status("packed", "picked") is None  # late
    assert domain.next_status("packed", "packed") is None  # repeated
    assert domain.next_status("cancelled", "picked") is None  # withdrawn
    assert domain.next_status("cancelled", "packed") is None
    assert domain.next_status("nothing_picked", "packed") is None


def test_a_short_pick_keeps_what_was_picked_and_reports_the_rest_missing() -> None:
    task = lines(("A", 3), ("B", 1), ("C", 2))
    picked = domain.picked_within(task, lines(("A", 2), ("C", 5), ("X", 1)))
    assert picked == lines(("A", 2), ("C", 2))  # never more than asked, nothing that was not asked
    assert domain.missing(task, picked) == lines(("A", 1), ("B", 1))
    assert domain.missing(task, domain.picked_within(task, [])) == task


def test_an_order_is_complete_when_every_task_not_withdrawn_has_shipped() -> None:
    assert domain.order_complete(["packed"])
    assert domain.order_complete(["packed", "cancelled", "nothing_picked", "packed"])
    assert not domain.order_complete(["packed", "released"])
    assert not domain.order_complete(["packed", "short_picked"])
    assert not domain.order_complete(["cancelled"])


def test_an_order_is_delivered_when_every_shipment_is() -> None:
    assert domain.order_delivered([True, True])
    assert not domain.order_delivered([True, False])
    assert not domain.order_delivered([])


# ---- cancellation ----


def task(status: str, *pairs: tuple[str, int], warehouse: str = "ams") -> domain.TaskState:
    return domain.TaskState(uuid.uuid4(), warehouse, status, tuple(lines(*pairs)))


def test_cancelling_the_whole_order_withdraws_every_open_task() -> None:
    released, picked, short = task("released", ("A", 1)), task("picked", ("B", 1)), task("short_picked", ("C", 1))
    gone = task("cancelled", ("D", 1))
    decision = domain.decide_cancellation([released, picked, short, gone], None)
    assert isinstance(decision, domain.Withdraw)
    assert set(decision.tasks) == {released, picked, short}


def test_a_cancellation_needing_a_packed_task_is_refused_and_withdraws_nothing() -> None:
    packed = task("packed", ("A", 1), warehouse="fra")
    decision = domain.decide_cancellation([task("released", ("B", 1)), packed], None)
    assert decision == domain.Refuse(
        f"already packed and handed to the carrier: shipment {packed.pick_task_id} from fra"
    )
    assert isinstance(domain.decide_cancellation([packed], lines(("A", 1))), domain.Refuse)


def test_cancelling_lines_withdraws_only_the_tasks_holding_them() -> None:
    holds_a, holds_b, shipped_c = (
        task("released", ("A", 2), ("B", 1)),
        task("picked", ("B", 3)),
        task("packed", ("C", 1)),
    )
    decision = domain.decide_cancellation([holds_a, holds_b, shipped_c], lines(("A", 1)))
    assert decision == domain.Withdraw((holds_a,))


def test_an_order_without_open_tasks_is_cancelled_with_nothing_to_withdraw() -> None:
    assert domain.decide_cancellation([], None) == domain.Withdraw(())
    assert domain.decide_cancellation([task("cancelled", ("A", 1))], None) == domain.Withdraw(())
