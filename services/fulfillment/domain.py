"""Fulfillment rules: pick task identity, carrier choice and tracking numbers. Pure: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

PICK_TASK_NAMESPACE = UUID("0f7a9d52-3e0b-4c1f-8f7e-2b6d1a4c9e30")


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


def pick_task_id(order_id: UUID, warehouse_id: str) -> UUID:
    """One pick task per (order, warehouse): the same shipment always gets the same id."""
    return uuid.uuid5(PICK_TASK_NAMESPACE, f"{order_id}/{warehouse_id}")


def choose_carrier(service_level: str) -> Carrier:
    return CARRIER_FOR_SERVICE[service_level]


def tracking_number(carrier: Carrier, sequence: int) -> str:
    return f"{carrier.tracking_prefix}{sequence:012d}"


def order_delivered(shipments_delivered: list[bool]) -> bool:
    """An order is delivered when every one of its shipments is."""
    return bool(shipments_delivered) and all(shipments_delivered)
