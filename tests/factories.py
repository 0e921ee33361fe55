"""Builders of valid contract documents for tests; every call gets fresh random ids so tests never collide."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


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
            "line1": "Dam 1",
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
