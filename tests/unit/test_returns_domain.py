"""The rules of a return, pure: eligibility with every reason, the reason tree and windows from configuration,
where the parcel goes and its label, how a receipt is matched against its RMA, and when an RMA closes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.returns import domain
from services.returns.domain import OrderFacts, Product
from services.returns.settings import ReturnsSettings
from shared.contracts import events as ev

SETTINGS = ReturnsSettings()
POLICY = SETTINGS.policy()
RULES = SETTINGS.shipping_rules()
DELIVERED = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
COUNTRIES = {"ams": "NL", "fra": "DE", "lyo": "FR"}


def facts(channel: str = "webshop", shipped: dict[str, dict[str, int]] | None = None, **kw: object) -> OrderFacts:
    shipped = shipped if shipped is not None else {"A": {"ams": 2}, "B": {"ams": 1}}
    return OrderFacts(channel, "NL", DELIVERED, shipped, ordered=frozenset(shipped), **kw)  # type: ignore[arg-type]


def line(sku: str = "A", quantity: int = 1, reason: str = "size.too_small") -> ev.ReturnLine:
    return ev.ReturnLine(sku=sku, quantity=quantity, reason=reason)


def test_the_reason_tree_gives_leaf_codes_that_inherit_their_parents_settings() -> None:
    leaves = POLICY.leaves()
    assert {"damaged.in_transit", "damaged.defective", "wrong_item", "size.too_small"} <= set(leaves)
    assert "damaged" not in leaves and "size" not in leaves
    assert leaves["damaged.defective"].review and leaves["damaged.defective"].refund_shipping
    assert leaves["no_longer_needed"].restocking_fee_percent == Decimal(10)


def test_the_most_specific_window_applies() -> None:
    assert POLICY.window_days("webshop", None) == 30
    assert POLICY.window_days("marketplace", None) == 14
    assert POLICY.window_days("webshop", "furniture") == 60
    assert POLICY.window_days("marketplace", "furniture") == 60  # the category is more specific than the channel


def test_a_request_within_the_window_for_shipped_units_is_authorised() -> None:
    decision = domain.decide([line("A", 2)], facts(), {}, POLICY, DELIVERED + timedelta(days=29))
    assert decision == domain.Decision(domain.AUTHORISED)


def test_outside_the_window_the_request_is_rejected_with_the_reason() -> None:
    decision = domain.decide([line("A")], facts(), {}, POLICY, DELIVERED + timedelta(days=31))
    assert decision.outcome == domain.REJECTED
    assert decision.reasons == ("A: the return window of 30 days from delivery on 2026-11-02 has passed",)


def test_the_window_depends_on_channel_and_category() -> None:
    later = DELIVERED + timedelta(days=20)
    assert domain.decide([line("A")], facts("marketplace"), {}, POLICY, later).outcome == domain.REJECTED
    sofa = {"A": Product("furniture", 30_000)}
    assert domain.decide([line("A")], facts("marketplace"), sofa, POLICY, later).outcome == domain.AUTHORISED


def test_non_returnable_goods_and_units_not_left_to_return_are_refused_all_reasons_given() -> None:
    products = {"B": Product("hygiene", 100)}
    decision = domain.decide(
        [line("A", 3), line("B", 1)], facts(requested={"A": 1}), products, POLICY, DELIVERED + timedelta(days=1)
    )
    assert decision.outcome == domain.REJECTED
    assert decision.reasons == (
        "A: 3 asked back, 1 returnable (2 shipped, 1 already asked back)",
        "B: not returnable (hygiene)",
    )


def test_a_second_request_for_the_same_units_is_refused() -> None:
    decision = domain.decide([line("B")], facts(requested={"B": 1}), {}, POLICY, DELIVERED + timedelta(days=1))
    assert decision == domain.Decision(
        domain.REJECTED, ("B: 1 asked back, 0 returnable (1 shipped, 1 already asked back)",)
    )


def test_a_return_is_capped_at_the_units_the_order_holds_after_its_changes() -> None:
    # given an order of which a change left one unit of A (two shipped under an older version) and took B away
    changed = OrderFacts("webshop", "NL", DELIVERED, {"A": {"ams": 2}}, ordered=frozenset({"A"}), units={"A": 1})
    now = DELIVERED + timedelta(days=1)
    # when both units of A are asked back, then one is returnable
    assert domain.decide([line("A", 2)], changed, {}, POLICY, now) == domain.Decision(
        domain.REJECTED, ("A: 2 asked back, 1 returnable (2 shipped, 1 in the order, 0 already asked back)",)
    )
    assert domain.decide([line("A", 1)], changed, {}, POLICY, now).outcome == domain.AUTHORISED
    # and B is not in the order any more
    assert domain.problems(domain.Request((line("B"),)), changed, POLICY) == ["line 1: SKU B is not in the order"]


def test_an_order_not_delivered_cannot_be_returned() -> None:
    undelivered = OrderFacts("webshop", "NL", None, {"A": {"ams": 1}}, ordered=frozenset({"A"}))
    assert domain.decide([line("A")], undelivered, {}, POLICY, DELIVERED).reasons == (
        "the order has not been delivered yet",
    )


def test_reasons_marked_for_review_and_large_requests_go_to_an_operator() -> None:
    now = DELIVERED + timedelta(days=1)
    defective = domain.decide([line("A", reason="damaged.defective")], facts(), {}, POLICY, now)
    assert defective == domain.Decision(domain.REVIEW, ("A: reason damaged.defective is checked by an operator",))
    many = facts(shipped={"A": {"ams": 30}})
    assert domain.decide([line("A", 25)], many, {}, POLICY, now).reasons == ("25 units asked back, over 20",)


def test_malformed_requests_are_named_line_by_line() -> None:
    request = domain.Request((line("A", reason="bored"), line("Z"), line("A")))
    found = domain.problems(request, facts(), POLICY)
    assert found[0].startswith("line 1: unknown reason code bored (known: damaged.defective, damaged.in_transit,")
    assert found[1:] == ["line 2: SKU Z is not in the order", "line 3: SKU A is named twice"]


def test_the_parcel_goes_back_to_the_shipping_warehouse_or_by_policy_the_nearest() -> None:
    split = facts(shipped={"A": {"fra": 2}, "B": {"ams": 1}})
    assert domain.receiving_warehouse([line("A", 2), line("B")], split, COUNTRIES, POLICY) == "fra"
    nearest = POLICY.model_copy(update={"receiving_warehouse": "nearest"})
    assert domain.receiving_warehouse([line("A", 2)], split, COUNTRIES, nearest) == "ams"  # the customer is in NL


def test_the_label_is_the_cheapest_service_to_the_warehouse_country() -> None:
    label = domain.cheapest_label(RULES, "ams", "NL", 900)
    offers = [
        (service.price(zone, 900), carrier.code, service.code)
        for carrier in RULES.carriers
        if (zone := carrier.zone_of("NL")) is not None
        for service in carrier.services
        if service.price(zone, 900) is not None
    ]
    assert label is not None and len(offers) > 1
    assert (label.price, label.carrier, label.service) == min(offers)
    assert label.warehouse_id == "ams" and label.weight_grams == 900
    assert domain.cheapest_label(RULES, "ams", "JP", 900) is None


def test_a_receipt_takes_what_the_rma_expects_and_sets_the_rest_aside() -> None:
    found = [
        ev.ReceivedLine(sku="A", quantity=3, disposition="restock"),
        ev.ReceivedLine(sku="X", quantity=1, disposition="restock"),
    ]
    receipt = domain.match_receipt(found, {"A": 2, "B": 1}, {}, open_=True)
    assert receipt.accepted == (ev.ReceivedLine(sku="A", quantity=2, disposition="restock"),)
    assert receipt.unexpected == (
        ev.ReceivedLine(sku="A", quantity=1, disposition="restock"),
        ev.ReceivedLine(sku="X", quantity=1, disposition="restock"),
    )
    assert not receipt.complete({"A": 2, "B": 1})  # B is still to come: the RMA stays open
    rest = domain.match_receipt([ev.ReceivedLine(sku="B", quantity=1, disposition="quarantine")], {"A": 2, "B": 1},
                                receipt.received, open_=True)  # fmt: skip
    assert rest.complete({"A": 2, "B": 1})


def test_a_parcel_for_a_closed_rma_is_all_set_aside() -> None:
    found = [ev.ReceivedLine(sku="A", quantity=1, disposition="restock")]
    receipt = domain.match_receipt(found, {"A": 1}, {}, open_=False)
    assert receipt.accepted == () and receipt.unexpected == tuple(found)


def test_an_expired_rma_says_what_came_back() -> None:
    expires = datetime(2026, 12, 2, tzinfo=UTC)
    assert (
        domain.expiry_reason({"A": 2}, {}, expires)
        == "expired on 2026-12-02: nothing received (parcel lost or never sent)"
    )
    assert domain.expiry_reason({"A": 2}, {"A": 1}, expires).startswith("expired on 2026-12-02: 1 of 2 units received")


def test_rma_numbers_carry_a_check_digit_that_catches_one_wrong_digit() -> None:
    number = domain.rma_number(1234)
    assert number.startswith("RMA-00001234") and len(number) == 13
    assert domain.rma_number(1235) != number
    assert len({domain.rma_number(n)[-1] for n in range(10)}) == 10


def test_an_exchange_names_what_the_customer_gets_instead() -> None:
    exchange = domain.Request((line("A"),), resolution="exchange")
    assert domain.problems(exchange, facts(), POLICY) == [
        "exchange_for: an exchange names what the customer gets instead"
    ]
    other = ev.PricedLine(sku="A-L", quantity=1, unit_price=Decimal("10.00"))
    assert (
        domain.problems(domain.Request((line("A"),), resolution="exchange", exchange_for=(other,)), facts(), POLICY)
        == []
    )
    assert domain.problems(domain.Request((line("A"),), exchange_for=(other,)), facts(), POLICY) == [
        "exchange_for: only for an exchange, not a refund"
    ]
