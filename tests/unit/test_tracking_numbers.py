"""Tracking numbers: each carrier's own format and check digit, unique per serial, and a validator."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.fulfillment import tracking
from services.fulfillment.rates import TrackingFormat
from services.fulfillment.settings import FulfillmentSettings

LUHN = TrackingFormat(scheme="luhn", prefix="PN")
S10 = TrackingFormat(scheme="s10", prefix="CP", suffix="NL")
UPS = TrackingFormat(scheme="ups", prefix="1Z999AA101")
CONFIGURED = [c.tracking for c in FulfillmentSettings().shipping_rules().carriers]


def test_check_digits_match_published_examples_of_each_scheme() -> None:
    assert tracking.luhn_check_digit("7992739871") == 3
    assert tracking.s10_check_digit("47312482") == 9  # UPU S10 example AA473124829GB
    assert tracking.ups_check_digit("999AA1012345678") == 4  # 1Z999AA10123456784
    assert tracking.is_valid(TrackingFormat(scheme="s10", prefix="AA", suffix="GB"), "AA473124829GB")
    assert tracking.is_valid(UPS, "1Z999AA10123456784")
    assert tracking.is_valid(TrackingFormat(scheme="ups", prefix="1ZWX0692YP"), "1ZWX0692YP40636269")


def test_each_configured_carrier_has_its_own_format() -> None:
    assert {f.scheme for f in CONFIGURED} == {"luhn", "s10", "ups"}
    numbers = {f.scheme: tracking.issue(f, 42) for f in CONFIGURED}
    assert numbers == {"luhn": "PN000000000422", "s10": "CP000000425NL", "ups": "1ZNL47110100000426"}
    for fmt in CONFIGURED:
        others = [n for scheme, n in numbers.items() if scheme != fmt.scheme]
        assert not any(tracking.is_valid(fmt, n) for n in others)


@given(st.sets(st.integers(min_value=1, max_value=10**7 - 1), min_size=2, max_size=50))
def test_distinct_serials_give_distinct_valid_numbers_in_every_format(serials: set[int]) -> None:
    for fmt in (LUHN, S10, UPS, *CONFIGURED):
        numbers = [tracking.issue(fmt, s) for s in serials]
        assert len(set(numbers)) == len(serials)
        assert all(tracking.is_valid(fmt, n) for n in numbers)


@given(st.integers(min_value=1, max_value=10**11 - 1), st.data())
def test_a_luhn_number_with_any_one_digit_changed_is_refused(serial: int, data: st.DataObject) -> None:
    number = tracking.issue(LUHN, serial)
    position = data.draw(st.integers(min_value=2, max_value=len(number) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not tracking.is_valid(LUHN, number[:position] + digit + number[position + 1 :])


@pytest.mark.parametrize("fmt", [LUHN, S10, UPS], ids=lambda f: f.scheme)
def test_a_wrong_check_digit_or_shape_is_refused(fmt: TrackingFormat) -> None:
    number = tracking.issue(fmt, 1234567)
    check_at = len(number) - 1 - len(fmt.suffix)
    wrong = str((int(number[check_at]) + 1) % 10)
    assert not tracking.is_valid(fmt, number[:check_at] + wrong + number[check_at + 1 :])
    assert not tracking.is_valid(fmt, number + "0")
    assert not tracking.is_valid(fmt, number.lower())


def test_a_serial_outside_the_formats_number_space_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        tracking.issue(S10, 10**8)
    with pytest.raises(ValueError, match="outside"):
        tracking.issue(LUHN, 0)
