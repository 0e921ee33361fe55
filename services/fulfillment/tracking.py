"""Tracking numbers in each carrier's own format, with its check digit; issuing and validating. Pure.

Uniqueness comes from the serial: the service draws it from one database sequence, so no two shipments of a
carrier share one, and the shipments table's primary key would refuse a repeat.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .rates import TrackingFormat

LUHN_SERIAL_DIGITS = 11
S10_SERIAL_DIGITS = 8
UPS_SERIAL_DIGITS = 7
S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def luhn_check_digit(digits: str) -> int:
    """The digit that makes `digits` + it pass the Luhn (mod 10) test."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # every second digit from the right, starting next to the check digit
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return (10 - total % 10) % 10


def s10_check_digit(serial: str) -> int:
    """UPU S10: weights 8 6 4 2 3 5 9 7, 11 minus the sum mod 11, where 10 becomes 0 and 11 becomes 5."""
    check = 11 - sum(int(d) * w for d, w in zip(serial, S10_WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def _ups_value(char: str) -> int:
    # UPS maps letters onto digits: A=2, B=3, ... H=9, I=0, J=1, ...
    return int(char) if char.isdigit() else (ord(char) - 63) % 10


def ups_check_digit(body: str) -> int:
    """UPS-style: characters after `1Z`, odd positions once and even positions twice, mod 10."""
    total = sum(_ups_value(c) * (1 if i % 2 == 0 else 2) for i, c in enumerate(body))
    return (10 - total % 10) % 10


def issue(fmt: TrackingFormat, serial: int) -> str:
    """The tracking number for serial number `serial` (>= 1) in this format."""
    width = {"luhn": LUHN_SERIAL_DIGITS, "s10": S10_SERIAL_DIGITS, "ups": UPS_SERIAL_DIGITS}[fmt.scheme]
    if not 0 < serial < 10**width:
        raise ValueError(f"serial {serial} outside the {width}-digit space of {fmt.scheme} tracking numbers")
    digits = f"{serial:0{width}d}"
    if fmt.scheme == "luhn":
        return f"{fmt.prefix}{digits}{luhn_check_digit(digits)}"
    if fmt.scheme == "s10":
        return f"{fmt.prefix}{digits}{s10_check_digit(digits)}{fmt.suffix}"
    body = fmt.prefix[2:] + digits
    return f"{fmt.prefix}{digits}{ups_check_digit(body)}"


def is_valid(fmt: TrackingFormat, number: str) -> bool:
    """Whether `number` has this format's shape and a correct check digit."""
    if fmt.scheme == "luhn":
        return _checked(rf"{fmt.prefix}(\d{{{LUHN_SERIAL_DIGITS}}})(\d)", number, luhn_check_digit)
    if fmt.scheme == "s10":
        return _checked(rf"{fmt.prefix}(\d{{{S10_SERIAL_DIGITS}}})(\d){fmt.suffix}", number, s10_check_digit)
    shipper_and_service = re.escape(fmt.prefix[2:])
    return _checked(rf"1Z({shipper_and_service}\d{{{UPS_SERIAL_DIGITS}}})(\d)", number, ups_check_digit)


def _checked(pattern: str, number: str, check_digit: Callable[[str], int]) -> bool:
    match = re.fullmatch(pattern, number)
    return match is not None and check_digit(match[1]) == int(match[2])
