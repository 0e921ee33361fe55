"""Dropship configuration and the split of an order's lines between warehouses and suppliers."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from services.allocation.dropship import split
from shared.reference.suppliers import DEFAULT_FILE, Supplier, Suppliers, load_suppliers

ACME = Supplier("acme", "Acme", ("DS-ACME-*",), timedelta(hours=1), 2)
NORDIC = Supplier("nordic", "Nordic", ("DS-NORDIC-*", "LAMP-7"), timedelta(seconds=5), 3)
SUPPLIERS = Suppliers((ACME, NORDIC))


def test_an_order_of_warehouse_skus_only_stays_with_the_warehouses() -> None:
    result = split({"MUG-1": 2, "TEA-2": 1}, SUPPLIERS)
    assert result.warehouse == {"MUG-1": 2, "TEA-2": 1} and result.dropship == {}


def test_dropship_lines_go_to_their_supplier_one_set_per_supplier_and_the_rest_to_warehouses() -> None:
    result = split({"MUG-1": 2, "DS-ACME-SOFA": 1, "DS-ACME-TABLE": 3, "LAMP-7": 4}, SUPPLIERS)
    assert result.warehouse == {"MUG-1": 2}
    assert result.dropship == {"acme": {"DS-ACME-SOFA": 1, "DS-ACME-TABLE": 3}, "nordic": {"LAMP-7": 4}}
    assert result.dropshipped == {"DS-ACME-SOFA": 1, "DS-ACME-TABLE": 3, "LAMP-7": 4}


def test_a_sku_two_suppliers_name_goes_to_the_first_in_the_file() -> None:
    both = Suppliers((ACME, Supplier("other", "Other", ("DS-*",), timedelta(hours=1), 1)))
    assert split({"DS-ACME-1": 1, "DS-X": 1}, both).dropship == {"acme": {"DS-ACME-1": 1}, "other": {"DS-X": 1}}


def test_lines_without_units_are_left_out() -> None:
    assert split({"DS-ACME-1": 0, "MUG": 0}, SUPPLIERS) == split({}, SUPPLIERS)


def test_the_reference_configuration_loads(tmp_path: Path) -> None:
    suppliers = load_suppliers(DEFAULT_FILE)
    assert suppliers.supplier_of("DS-ACME-chair") is not None and suppliers.supplier_of("MUG-1") is None
    assert all(s.answer_timeout > timedelta(0) for s in suppliers.suppliers)


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "x", "name": "X", "skus": ["A"], "answer_timeout_seconds": 0, "ship_by_lead_days": 1},
        {"id": "x", "name": "X", "skus": ["A"], "answer_timeout_seconds": 5, "ship_by_lead_days": -1},
    ],
)
def test_a_supplier_without_a_positive_timeout_or_with_negative_lead_days_is_refused(
    tmp_path: Path, entry: dict[str, object]
) -> None:
    path = tmp_path / "dropship.json"
    path.write_text(json.dumps({"suppliers": [entry]}))
    with pytest.raises(ValueError, match="positive answer timeout"):
        load_suppliers(path)


def test_a_supplier_id_twice_is_refused(tmp_path: Path) -> None:
    entry = {"id": "x", "name": "X", "skus": ["A"], "answer_timeout_seconds": 5, "ship_by_lead_days": 1}
    path = tmp_path / "dropship.json"
    path.write_text(json.dumps({"suppliers": [entry, entry]}))
    with pytest.raises(ValueError, match="twice"):
        load_suppliers(path)
