"""The orders the benchmark sends: valid (none is rejected), about 1 KB of JSON with 4 to 7 lines each, and
each shipped from one warehouse (stock is seeded far above what a run takes), so every order ends as exactly
one pick task and one delivery. Postal codes and SKUs stay clear of the simulator's HOLD / SHORT / EXC triggers."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

CHANNEL = "webshop"
COUNTRIES = ("NL", "DE", "FR", "BE")
SHIPPING = Decimal("4.95")
STOCK_PER_WAREHOUSE = 5_000_000  # per SKU: far more than any run takes, so nothing is backordered
WAREHOUSES = ("ams", "fra", "lyo")


def catalogue(run: str, size: int) -> list[str]:
    return [f"BENCH-{run}-{i:03d}" for i in range(size)]


def external_id(run: str, phase: str, number: int) -> str:
    return f"bench-{run}-{phase}-{number}"


def order(run: str, phase: str, number: int, skus: list[str]) -> dict[str, Any]:
    rng = random.Random(f"{phase}:{number}")
    chosen = rng.sample(skus, rng.randint(4, 7))
    lines = [(sku, rng.randint(1, 3), Decimal(f"{rng.randint(5, 80)}.{rng.randint(0, 99):02d}")) for sku in chosen]
    total = sum((price * quantity for _, quantity, price in lines), SHIPPING)
    name = f"Bench Customer {number}"
    return {
        "channel": CHANNEL,
        "external_id": external_id(run, phase, number),
        "placed_at": datetime.now(UTC).isoformat(),
        "currency": "EUR",
        # A customer and an address of their own per run and phase: the risk rules' velocity is not what is measured.
        "customer": {"email": f"bench-{run}-{phase}-{number}@example.test", "name": name, "phone": "+31 20 555 0100"},
        "shipping_address": {
            "name": name,
            "line1": f"Benchmarkstraat {number % 500 + 1}",
            # the number makes the address the order's own however many a phase sends (street and postal code
            # repeat every 9,000 orders, and the sixth order to one address in a day is held)
            "line2": f"Building B, unit {number}, {run}-{phase}",
            "city": "Amsterdam",
            "region": "Noord-Holland",
            "postal_code": f"{1000 + number % 9000}",
            "country": COUNTRIES[number % len(COUNTRIES)],
        },
        "service_level": "express" if number % 5 == 0 else "standard",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": str(price)} for sku, quantity, price in lines],
        "shipping_price": str(SHIPPING),
        "payment": {"status": "paid", "amount": str(total), "currency": "EUR"},
    }


def first_shopify_id(run: str, phase: str) -> int:
    """The first Shopify order id of a phase's deliveries (up to 100,000 follow it): 13 digits, as Shopify's are,
    apart for every run and phase (capture takes a repeated id as the same order delivered again)."""
    return 10**12 + int(hashlib.sha256(f"{run}:{phase}".encode()).hexdigest()[:6], 16) * 10**5
