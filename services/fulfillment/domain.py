"""Fulfillment rules: pick task identity, carrier choice and tracking numbers. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Carrier:
    code: str
    tracking_prefix: str


# Until the rate tables arrive, the service level decides the carrier.
CARRIER_FOR_SERVICE = {
    "standard": Carrier("parcelnet", "PN"),
    "express": Carrier("swiftpost", "SP"),
    "overnight": Carrier("nightline", "NL"),
}


def choose_carrier(service_level: str) -> Carrier:
    return CARRIER_FOR_SERVICE[service_level]


def tracking_number(carrier: Carrier, sequence: int) -> str:
    return f"{carrier.tracking_prefix}{sequence:012d}"


def order_delivered(shipments_delivered: list[bool]) -> bool:
    """An order is delivered when every one of its shipments is."""
    return bool(shipments_delivered) and all(shipments_delivered)
