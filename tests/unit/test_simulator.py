"""The simulator's deterministic triggers: SHORT SKUs are short-picked (by one unit, or wholly at the warehouse
a `SHORT-<warehouse>-` SKU names), EXC postal codes get a
carrier exception before delivery; everything else goes as before."""

from deploy.local.simulator import EXCEPTION_DETAIL, carrier_steps, picked_lines


def test_a_sku_marked_short_is_picked_one_unit_short_and_others_in_full() -> None:
    lines = [{"sku": "T-SHORT-1", "quantity": 3}, {"sku": "T-2", "quantity": 2}, {"sku": "X-SHORT", "quantity": 1}]
    assert picked_lines(lines, "ams") == [{"sku": "T-SHORT-1", "quantity": 2}, {"sku": "T-2", "quantity": 2}]
    assert picked_lines([{"sku": "T-2", "quantity": 2}], "ams") == [{"sku": "T-2", "quantity": 2}]


def test_a_sku_short_at_one_warehouse_is_missing_there_and_whole_elsewhere() -> None:
    lines = [{"sku": "SHORT-ams-1", "quantity": 3}, {"sku": "T-2", "quantity": 2}]
    assert picked_lines(lines, "ams") == [{"sku": "T-2", "quantity": 2}]
    assert picked_lines(lines, "fra") == lines


def test_a_postal_code_starting_with_exc_gets_an_exception_before_delivery() -> None:
    assert [kind for kind, _ in carrier_steps("EXC 123")] == [
        "in_transit",
        "exception",
        "out_for_delivery",
        "delivered",
    ]
    assert dict(carrier_steps("exc-9"))["exception"] == EXCEPTION_DETAIL
    assert carrier_steps("1012 JS") == carrier_steps(None) == [("in_transit", None), ("delivered", None)]
