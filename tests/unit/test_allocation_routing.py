"""The routing rules on their own: safety stock, distance ranking, one warehouse, split, partial."""

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from services.allocation import geography, routing
from services.allocation.routing import Candidate, Network
from services.allocation.settings import DEFAULT_ALLOCATION_FILE, load_network
from shared.reference.warehouses import DEFAULT_FILE, Warehouse, load_warehouses

WAREHOUSES = load_warehouses(DEFAULT_FILE)  # ams (NL, 1), fra (DE, 2), lyo (FR, 3), with coordinates
NETWORK = Network(WAREHOUSES)


def ranked(*ids: str) -> list[Candidate]:
    return [Candidate(w, float(i * 100), i) for i, w in enumerate(ids)]


AMS_FRA_LYO = ranked("ams", "fra", "lyo")

# ---- safety stock ----


def test_safety_stock_the_most_specific_setting_wins() -> None:
    warehouses = (Warehouse("ams", "A", "NL", WAREHOUSES[0].cutoff, 1, safety_stock=2),)
    network = Network(warehouses, sku_safety_stock={"X": 5, "Y": 1}, warehouse_sku_safety_stock={("ams", "Y"): 7})
    assert network.safety_stock("ams", "Z") == 2  # the warehouse's default
    assert network.safety_stock("ams", "X") == 5  # the SKU's, everywhere
    assert network.safety_stock("ams", "Y") == 7  # the SKU's in that warehouse


# ---- distance ----


def order_of(country: str, postal_code: str | None = None) -> list[str]:
    return [c.warehouse_id for c in NETWORK.candidates(country, postal_code)]


def test_warehouses_are_ranked_nearest_to_the_destination_first() -> None:
    assert order_of("NL") == ["ams", "fra", "lyo"]
    assert order_of("DE") == ["fra", "ams", "lyo"]
    assert order_of("FR") == ["lyo", "fra", "ams"]
    assert order_of("ES")[0] == "lyo"
    assert order_of("PL")[0] == "fra"


def test_the_first_postal_digit_refines_the_destination_in_germany_and_the_netherlands() -> None:
    assert order_of("DE", "20095")[0] == "ams"  # Hamburg is nearer Amsterdam than Frankfurt
    assert order_of("DE", "80331")[0] == "fra"  # Munich
    assert order_of("NL", "6211")[0] == "ams"  # Maastricht is still nearer Amsterdam than Frankfurt


def test_distance_is_the_great_circle_distance_in_km() -> None:
    amsterdam, frankfurt = geography.Location(52.37, 4.90), geography.Location(50.11, 8.68)
    assert 360 < geography.distance_km(amsterdam, frankfurt) < 370


def test_an_unknown_destination_ranks_warehouses_by_priority() -> None:
    assert order_of("ZZ") == ["ams", "fra", "lyo"]
    assert all(c.distance_km is None for c in NETWORK.candidates("ZZ"))


def test_equal_distances_are_broken_by_configured_priority() -> None:
    twin = [
        Warehouse("second", "S", "NL", WAREHOUSES[0].cutoff, 2, 52.37, 4.90),
        Warehouse("first", "F", "NL", WAREHOUSES[0].cutoff, 1, 52.37, 4.90),
    ]
    assert [c.warehouse_id for c in Network(tuple(twin)).candidates("NL")] == ["first", "second"]


# ---- rule 1: one warehouse ----


def test_rule1_the_nearest_warehouse_that_holds_every_line_ships_the_whole_order() -> None:
    available = {("ams", "A"): 5, ("ams", "B"): 1, ("fra", "A"): 5, ("fra", "B"): 1}
    decision = routing.route({"A": 2, "B": 1}, available, NETWORK.candidates("DE"), 3)
    assert decision.shipments == (("fra", {"A": 2, "B": 1}),)
    assert decision.complete
    assert decision.reason.startswith("one shipment from fra: the nearest warehouse that holds every line")


def test_rule1_one_farther_warehouse_beats_a_split_between_nearer_ones() -> None:
    available = {("ams", "A"): 1, ("fra", "B"): 1, ("lyo", "A"): 1, ("lyo", "B"): 1}
    decision = routing.route({"A": 1, "B": 1}, available, AMS_FRA_LYO, 3)
    assert decision.shipments == (("lyo", {"A": 1, "B": 1}),)


# ---- rule 2: split ----


def test_rule2_otherwise_the_order_splits_across_the_fewest_warehouses() -> None:
    available = {("ams", "A"): 1, ("fra", "B"): 1, ("lyo", "A"): 1, ("lyo", "C"): 1}
    decision = routing.route({"A": 1, "B": 1, "C": 1}, available, AMS_FRA_LYO, 3)
    assert decision.shipments == (("fra", {"B": 1}), ("lyo", {"A": 1, "C": 1}))
    assert decision.reason.startswith("split into 2 shipments from fra, lyo")


def test_rule2_among_equally_few_warehouses_the_nearest_are_chosen() -> None:
    available = {("ams", "A"): 1, ("fra", "B"): 1, ("lyo", "B"): 1}
    decision = routing.route({"A": 1, "B": 1}, available, AMS_FRA_LYO, 3)
    assert decision.shipments == (("ams", {"A": 1}), ("fra", {"B": 1}))


def test_rule2_a_line_one_warehouse_of_the_split_can_cover_is_not_split() -> None:
    # ams and fra both ship; A could come half from each, but fra holds all of it
    available = {("ams", "A"): 2, ("ams", "B"): 1, ("fra", "A"): 4, ("fra", "C"): 1}
    decision = routing.route({"A": 4, "B": 1, "C": 1}, available, AMS_FRA_LYO, 3)
    assert decision.shipments == (("ams", {"B": 1}), ("fra", {"A": 4, "C": 1}))


def test_rule2_a_line_no_warehouse_covers_alone_is_split_in_the_fewest_pieces_nearest_first() -> None:
    available = {("ams", "A"): 3, ("fra", "A"): 8, ("lyo", "A"): 5}
    decision = routing.route({"A": 10}, available, AMS_FRA_LYO, 3)
    assert decision.shipments == (("ams", {"A": 3}), ("fra", {"A": 7}))


# ---- rule 3: what cannot ship now ----


def test_rule3_what_is_in_stock_ships_and_the_rest_is_missing() -> None:
    available = {("ams", "A"): 3, ("fra", "A"): 1, ("ams", "B"): 9}
    decision = routing.route({"A": 5, "B": 1}, available, AMS_FRA_LYO, 3)
    assert decision.shipments == (("ams", {"A": 3, "B": 1}), ("fra", {"A": 1}))
    assert decision.missing == {"A": 1}
    assert decision.reason == "partial: ams, fra ship what is in stock now; waiting for A short by 1"


def test_rule3_with_nothing_in_stock_nothing_ships_and_everything_is_missing() -> None:
    decision = routing.route({"A": 2, "B": 1}, {}, AMS_FRA_LYO, 3)
    assert decision.shipments == ()
    assert decision.missing == {"A": 2, "B": 1}
    assert decision.reason == "waiting for stock: A short by 2, B short by 1"


def test_a_channel_cap_on_shipments_turns_a_split_into_a_partial_shipment() -> None:
    available = {("ams", "A"): 1, ("fra", "B"): 2}
    decision = routing.route({"A": 1, "B": 2}, available, AMS_FRA_LYO, 1)
    assert decision.shipments == (("fra", {"B": 2}),)  # the single warehouse that ships the most units
    assert decision.missing == {"A": 1}
    assert "at most 1 shipment per decision" in decision.reason


# ---- configuration ----


def test_warehouses_load_from_configuration() -> None:
    assert WAREHOUSES[0] == Warehouse("ams", "Amsterdam DC", "NL", WAREHOUSES[0].cutoff, 1, 52.37, 4.90, 0)
    assert str(WAREHOUSES[0].cutoff) == "16:00:00"


def test_the_routing_network_loads_from_configuration() -> None:
    network = load_network(DEFAULT_FILE, DEFAULT_ALLOCATION_FILE)
    assert network.warehouse_ids == ("ams", "fra", "lyo")
    assert network.max_shipments("webshop") == 3
    assert network.max_shipments("pos") == 1
    assert network.max_shipments("marketplace") == 2


# ---- properties of one routing decision ----

warehouse_ids = ["ams", "fra", "lyo"]
skus = st.sampled_from(["A", "B", "C", "D"])


@given(
    wanted=st.dictionaries(skus, st.integers(1, 12), min_size=1),
    available=st.dictionaries(st.tuples(st.sampled_from(warehouse_ids), skus), st.integers(0, 10)),
    order=st.permutations(warehouse_ids),
    limit=st.integers(1, 3),
)
def test_a_routing_decision_obeys_every_rule(
    wanted: dict[str, int], available: dict[tuple[str, str], int], order: list[str], limit: int
) -> None:
    decision = routing.route(wanted, available, ranked(*order), limit)
    used = [w for w, _ in decision.shipments]

    # never more than a warehouse can promise, nothing shipped twice, every wanted unit shipped or missing
    assert len(used) == len(set(used)) <= limit
    for w, lines in decision.shipments:
        assert lines and all(0 < q <= available.get((w, sku), 0) for sku, q in lines.items())
    for sku, quantity in wanted.items():
        shipped = sum(lines.get(sku, 0) for _, lines in decision.shipments)
        assert shipped + decision.missing.get(sku, 0) == quantity

    def covers(group: tuple[str, ...]) -> int:
        return sum(min(q, sum(available.get((w, s), 0) for w in group)) for s, q in wanted.items())

    groups = [g for n in range(1, limit + 1) for g in combinations(order, n)]
    if decision.complete:
        # rule 1 and 2: no fewer warehouses could have shipped it all, and the first such group in nearest order wins
        first = next(g for g in sorted(groups, key=len) if covers(g) == sum(wanted.values()))
        assert tuple(used) == first
    else:
        # rule 3: no allowed group could ship more now
        assert sum(sum(lines.values()) for _, lines in decision.shipments) == max(covers(g) for g in groups)
    # no line is split into more pieces than its warehouses in this decision need
    for sku, quantity in wanted.items():
        pieces = [lines[sku] for _, lines in decision.shipments if sku in lines]
        holders = sorted((available.get((w, sku), 0) for w in used), reverse=True)
        if sum(pieces) == quantity:
            assert len(pieces) == next(n for n in range(len(holders) + 1) if sum(holders[:n]) >= quantity)
        else:
            assert len(pieces) == sum(1 for units in holders if units > 0)
