"""The risk rules at intake: each rule fires on what it names and records its facts; the score gives the level,
the recommendation and the holds (stacked by type); orders read together count for each other."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.capture import risk
from services.capture.settings import CaptureSettings
from shared.contracts.events import SubmittedOrder
from tests.factories import order_document

AT = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def order(email: str = "ada@example.test", **overrides: Any) -> SubmittedOrder:
    document = order_document(**overrides)
    document["customer"]["email"] = email
    return SubmittedOrder.model_validate(document)


def rules(**overrides: Any) -> risk.RiskRules:
    return risk.RiskRules.model_validate(overrides)


def assess(o: SubmittedOrder, configured: risk.RiskRules, history: Any = None) -> risk.Assessment:
    total = Decimal(o.payment.amount)
    return risk.assess(o, total, risk.keys(o), risk.Tally(history or {}), configured, AT)


def assess_batch(orders: list[SubmittedOrder], configured: risk.RiskRules) -> list[risk.Assessment]:
    found = risk.assess_all(((o, Decimal(o.payment.amount), risk.keys(o), True) for o in orders), {}, configured, AT)
    return [a for a in found if a is not None]


EMAIL_VELOCITY = {"velocity": [{"per": "email", "window_hours": 24, "max_orders": 5, "score": 60}]}


def test_the_sixth_order_of_an_email_in_its_window_is_held_for_fraud_with_the_counts() -> None:
    # given five orders from this e-mail in the last 24 hours
    configured = rules(**EMAIL_VELOCITY)
    o = order()
    history = {("email", risk.keys(o)["email"], AT - timedelta(hours=24)): risk.Seen(5, Decimal("100"))}
    # when a sixth comes
    found = assess(o, configured, history)
    # then the velocity rule fires with its facts, the order is to be investigated and goes on a fraud hold
    (fired,) = found.fired
    assert (fired.rule, fired.score, fired.hold) == ("velocity.email", 60, "fraud")
    assert fired.facts["orders"] == 6 and fired.facts["max_orders"] == 5 and fired.facts["window_hours"] == 24
    assert fired.reason == "6 orders from this e-mail in 24 h (at most 5)"
    assert (found.score, found.level, found.recommendation) == (60, "high", "investigate")
    assert found.holds == {"fraud": fired.reason}
    # and the fifth would have passed
    history = {("email", risk.keys(o)["email"], AT - timedelta(hours=24)): risk.Seen(4, Decimal("80"))}
    assert assess(o, configured, history).recommendation == "accept"


def test_orders_read_together_count_for_each_other() -> None:
    configured = rules(**EMAIL_VELOCITY)
    burst = [order("Burst@Example.test") for _ in range(7)]
    found = assess_batch(burst, configured)
    assert [a.recommendation for a in found] == ["accept"] * 5 + ["investigate"] * 2


def test_velocity_by_amount_fires_over_the_amount_in_the_window() -> None:
    configured = rules(
        velocity=[{"per": "address", "window_hours": 1, "max_amount": "100", "score": 50, "hold": "address"}]
    )
    o = order(lines=[("SKU-1", 3)])  # 34.95
    history = {("address", risk.keys(o)["address"], AT - timedelta(hours=1)): risk.Seen(2, Decimal("70"))}
    (fired,) = assess(o, configured, history).fired
    assert fired.rule == "velocity.address" and fired.facts["amount"] == "104.95"
    assert fired.reason == "104.95 in orders from this shipping address in 1 h (at most 100)"


def test_payment_reference_and_ip_are_counted_only_when_the_order_has_them() -> None:
    configured = rules(
        velocity=[
            {"per": "payment", "window_hours": 24, "max_orders": 1, "score": 60, "hold": "payment"},
            {"per": "ip", "window_hours": 1, "max_orders": 1, "score": 50},
        ]
    )
    bare = [order(f"c{i}@example.test") for i in range(2)]
    assert [a.fired for a in assess_batch(bare, configured)] == [(), ()]
    signed = [
        order(f"c{i}@example.test", payment={"status": "paid", "amount": "14.95", "reference": "fp_42"}, client_ip=ip)
        for i, ip in enumerate(["2001:db8::1", "2001:DB8::2"])  # one /64: one customer's line
    ]
    later = assess_batch(signed, configured)[1]
    assert {f.rule for f in later.fired} == {"velocity.payment", "velocity.ip"}
    assert later.holds.keys() == {"payment", "fraud"}


def test_a_normalised_address_ignores_case_accents_punctuation_spaces_and_street_words() -> None:
    assert risk.normalised_address("Main Street 1", None, "1012 js", "NL") == risk.normalised_address(
        "main st. 1", "", "1012JS", "NL"
    )
    assert risk.normalised_address("Hauptstraße 5", None, "10115", "DE") == risk.normalised_address(
        "HAUPTSTRASSE 5", None, "10115", "DE"
    )
    assert risk.normalised_address("Dam 1", None, "1012 JS", "NL") != risk.normalised_address(
        "Dam 1", None, "1013 JS", "NL"
    )


BLOCKLIST = {
    "blocklist": {
        "emails": [
            {"value": "chargeback.king@gmail.com", "match": "normalised"},
            {"value": "x@shop.test", "match": "exact"},
        ],
        "domains": [{"value": "blocked.example", "match": "normalised"}, {"value": "only.example", "match": "exact"}],
        "addresses": [
            {"line1": "Blocked Lane 13", "postal_code": "1013 XX", "country": "NL"},
            {"line1": "Exact Road 1", "postal_code": "9999", "country": "NL", "match": "exact"},
        ],
    }
}


@pytest.mark.parametrize(
    ("email", "rule"),
    [
        ("Chargeback.King+promo@googlemail.com", "blocklist.email"),
        ("chargebackking@gmail.com", "blocklist.email"),
        ("X@Shop.Test", "blocklist.email"),
        ("anyone@blocked.example", "blocklist.domain"),
        ("anyone@mail.blocked.example", "blocklist.domain"),
        ("anyone@only.example", "blocklist.domain"),
    ],
)
def test_a_blocklisted_email_or_domain_is_held_for_fraud(email: str, rule: str) -> None:
    found = assess(order(email), rules(**BLOCKLIST))
    assert [f.rule for f in found.fired] == [rule]
    assert (found.score, found.recommendation) == (100, "cancel") and list(found.holds) == ["fraud"]


@pytest.mark.parametrize("email", ["x+tag@shop.test", "anyone@mail.only.example", "chargeback.king@yahoo.com"])
def test_exact_entries_match_only_the_same_value(email: str) -> None:
    assert assess(order(email), rules(**BLOCKLIST)).fired == ()


def test_a_blocklisted_shipping_or_billing_address_is_matched_normalised_or_exactly() -> None:
    configured = rules(**BLOCKLIST)
    typed_otherwise = {"name": "X", "line1": "blocked lane 13.", "city": "A", "postal_code": "1013xx", "country": "NL"}
    assert [f.rule for f in assess(order(shipping_address=typed_otherwise), configured).fired] == [
        "blocklist.shipping_address"
    ]
    billed = order(billing_address=typed_otherwise)
    assert [f.rule for f in assess(billed, configured).fired] == ["blocklist.billing_address"]
    exact = {"name": "X", "line1": "Exact Road 1", "city": "A", "postal_code": "9999", "country": "NL"}
    assert assess(order(shipping_address=exact), configured).fired != ()
    assert assess(order(shipping_address={**exact, "line1": "Exact Rd 1"}), configured).fired == ()


def test_a_first_order_of_high_value_scores_but_a_known_customer_does_not() -> None:
    configured = rules(first_time_customer={"above": "1000", "score": 30})
    big = order(lines=[("SKU-1", 200)])  # 2004.95
    (fired,) = assess(big, configured).fired
    assert (fired.rule, fired.facts) == ("first_time_high_value", {"total": "2004.95", "above": "1000"})
    assert assess(big, configured).recommendation == "accept"  # on its own, not enough for a hold
    known = {("email", risk.keys(big)["email"], risk.EVER): risk.Seen(1, Decimal("10"))}
    assert assess(big, configured, known).fired == ()


def test_rules_that_ask_for_different_holds_stack_them() -> None:
    configured = rules(
        country_mismatch={"score": 25},
        risky_destinations={"places": [{"country": "US", "postal_prefix": "19720"}], "score": 30},
    )
    shipped = {
        "name": "X",
        "line1": "1 Forwarder Way",
        "city": "New Castle",
        "postal_code": "19720-1234",
        "country": "US",
    }
    billed = {**shipped, "country": "NL", "postal_code": "1012"}
    found = assess(order(shipping_address=shipped, billing_address=billed), configured)
    assert [f.rule for f in found.fired] == ["country_mismatch", "risky_destination"]
    assert found.fired[0].facts == {"billing": "NL", "shipping": "US"}
    assert (found.score, found.recommendation) == (55, "investigate")
    assert found.holds == {
        "fraud": "billed in NL, shipped to US",
        "address": "ships to a risky destination (US 19720…)",
    }


@pytest.mark.parametrize(
    ("signal", "score", "recommendation"),
    [("accept", 0, "accept"), ("investigate", 50, "investigate"), ("cancel", 90, "cancel")],
)
def test_the_channels_own_recommendation_adds_its_score(signal: str, score: int, recommendation: str) -> None:
    found = assess(order(channel_risk=signal), rules(channel_signal={"investigate": 50, "cancel": 90}))
    assert (found.score, found.recommendation) == (score, recommendation)


def test_the_score_is_capped_and_the_level_follows_the_thresholds() -> None:
    configured = rules(**BLOCKLIST, channel_signal={"investigate": 20, "cancel": 90})
    assert assess(order("anyone@blocked.example", channel_risk="cancel"), configured).score == 100
    assert assess(order(channel_risk="investigate"), configured).level == "low"
    assert assess(order(channel_risk="investigate"), rules(channel_signal={"investigate": 30})).level == "medium"


def test_the_reference_rules_load_and_bad_thresholds_are_refused() -> None:
    configured = CaptureSettings().risk_rules()
    assert {v.per for v in configured.velocity} == {"email", "address", "payment", "ip"}
    assert configured.time_limit("fraud") == timedelta(hours=72)
    with pytest.raises(ValidationError):
        rules(investigate_at=60, cancel_at=50)
    with pytest.raises(ValidationError):
        rules(time_limits_hours={"fraud": 1})
    with pytest.raises(ValidationError):
        rules(velocity=[{"per": "email", "window_hours": 1, "score": 10}])


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=20))
def test_a_burst_holds_exactly_the_orders_over_the_limit_per_email(senders: list[str]) -> None:
    found = assess_batch([order(f"{s}@example.test") for s in senders], rules(**EMAIL_VELOCITY))
    held = Counter(s for s, a in zip(senders, found, strict=True) if a.holds)
    assert held == Counter({s: n - 5 for s, n in Counter(senders).items() if n > 5})


words = st.text(alphabet="abcdefghij0123456789 ", min_size=1, max_size=20).filter(str.strip)


@given(words, words, st.sampled_from(["", " ", ".", ","]))
def test_an_address_typed_in_another_case_or_with_other_punctuation_is_the_same(
    line1: str, postal: str, mark: str
) -> None:
    retyped = line1.upper().replace(" ", f"{mark}  ") + mark
    assert risk.normalised_address(line1, None, postal, "NL") == risk.normalised_address(
        retyped, "", postal.upper().replace(" ", ""), "NL"
    )


@given(st.from_regex(r"[a-z][a-z0-9.]{0,10}", fullmatch=True), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
def test_an_email_with_a_tag_or_in_capitals_reaches_the_same_mailbox(local: str, tag: str) -> None:
    assert risk.normalised_email(f"{local.upper()}+{tag}@Example.TEST") == risk.normalised_email(
        f"{local}@example.test"
    )
