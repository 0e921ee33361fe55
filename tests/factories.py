"""Builders of valid contract documents for tests; every call gets fresh random ids so tests never collide."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.contracts import events as ev


def order_document(
    lines: list[tuple[str, int]] | None = None,
    *,
    unit_price: str = "10.00",
    channel: str = "webshop",
    country: str = "NL",
    payment_status: str = "paid",
    amount: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    lines = lines or [("SKU-1", 1)]
    total = sum(float(unit_price) * q for _, q in lines) + 4.95
    document: dict[str, Any] = {
        "channel": channel,
        "external_id": f"ext-{uuid.uuid4()}",
        "placed_at": datetime.now(UTC).isoformat(),
        "currency": "EUR",
        "customer": {"email": f"c-{uuid.uuid4().hex[:8]}@example.test", "name": "Test Customer"},
        "shipping_address": {
            "name": "Test Customer",
            # A house of its own: the tests' orders are not one burst to one address for the risk rules.
            "line1": f"Dam {uuid.uuid4().int % 10**9}",
            "city": "Amsterdam",
            "postal_code": "1012 JS",
            "country": country,
        },
        "service_level": "standard",
        "lines": [{"sku": sku, "quantity": q, "unit_price": unit_price} for sku, q in lines],
        "shipping_price": "4.95",
        "payment": {"status": payment_status, "amount": amount or f"{total:.2f}"},
    }
    document.update(overrides)
    return document


def validated_order(order_id: uuid.UUID, sku: str, quantity: int = 1) -> ev.OrderValidated:
    """The OrderValidated capture would announce for an order of `quantity` units of one SKU."""
    document = order_document([(sku, quantity)])
    return ev.OrderValidated(
        order_id=order_id,
        channel=document["channel"],
        external_id=document["external_id"],
        received_at=datetime.now(UTC),
        currency=document["currency"],
        total=Decimal(document["payment"]["amount"]),
        customer=ev.Customer.model_validate(document["customer"]),
        ship_to=ev.Address.model_validate(document["shipping_address"]),
        service_level=document["service_level"],
        lines=[ev.ItemQuantity(sku=sku, quantity=quantity)],
    )


@dataclass
class Record:
    """A consumed record as the Kafka client hands it over, for what decodes records."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    partition: int = 0
    offset: int = 7
    timestamp: int = 1_764_000_000_000
