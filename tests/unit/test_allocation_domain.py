from hypothesis import given
from hypothesis import strategies as st

from services.allocation import domain
from shared.warehouses import DEFAULT_FILE, Warehouse, load_warehouses

WAREHOUSES = load_warehouses(DEFAULT_FILE)  # ams (NL, 1), fra (DE, 2), lyo (FR, 3)


def test_a_warehouse_in_the_destination_country_that_has_everything_wins() -> None:
    available = {("ams", "A"): 5, ("fra", "A"): 5, ("fra", "B"): 1, ("ams", "B"): 1}
    assert domain.route({"A": 2, "B": 1}, available, WAREHOUSES, "DE") == domain.Reserve("fra", {"A": 2, "B": 1})


def test_otherwise_the_highest_priority_warehouse_that_has_everything() -> None:
    available = {("lyo", "A"): 5, ("fra", "A"): 5}
    assert domain.route({"A": 5}, available, WAREHOUSES, "US") == domain.Reserve("fra", {"A": 5})


def test_an_order_no_single_warehouse_can_ship_is_backordered_with_what_is_missing() -> None:
    available = {("ams", "A"): 3, ("fra", "A"): 1, ("ams", "B"): 9}
    decision = domain.route({"A": 5, "B": 1}, available, WAREHOUSES, "NL")
    assert decision == domain.Backorder("waiting for stock: A short by 2", {"A": 2})


def test_lines_split_across_warehouses_are_not_yet_combined() -> None:
    available = {("ams", "A"): 1, ("fra", "B"): 1}
    decision = domain.route({"A": 1, "B": 1}, available, WAREHOUSES, "NL")
    assert isinstance(decision, domain.Backorder)
    assert decision.missing == {}


def test_a_count_below_reserved_keeps_the_reserved_units_and_reports_the_shortfall() -> None:
    assert domain.count_reconciliation(counted=10, reserved=4) == (10, 0)
    assert domain.count_reconciliation(counted=3, reserved=5) == (5, 2)


warehouse_ids = st.sampled_from([w.id for w in WAREHOUSES])
skus = st.sampled_from(["A", "B", "C"])


@given(
    lines=st.dictionaries(skus, st.integers(1, 20), min_size=1),
    available=st.dictionaries(st.tuples(warehouse_ids, skus), st.integers(0, 30)),
    country=st.sampled_from(["NL", "DE", "FR", "US"]),
)
def test_a_reservation_never_exceeds_what_the_chosen_warehouse_has(
    lines: dict[str, int], available: dict[tuple[str, str], int], country: str
) -> None:
    decision = domain.route(lines, available, WAREHOUSES, country)
    if isinstance(decision, domain.Reserve):
        assert decision.lines == lines
        assert all(available.get((decision.warehouse_id, s), 0) >= q for s, q in lines.items())
    else:
        assert not any(domain.can_ship_all(w.id, lines, available) for w in WAREHOUSES)


def test_warehouses_load_from_configuration() -> None:
    assert WAREHOUSES[0] == Warehouse("ams", "Amsterdam DC", "NL", WAREHOUSES[0].cutoff, 1)
    assert str(WAREHOUSES[0].cutoff) == "16:00:00"
