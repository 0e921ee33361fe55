"""Shopify's `orders/create` webhook as the development shop delivers it, for the tools that load the pipeline (the
benchmark and the chaos run): the body in Shopify's shape for a generic order, and the headers Shopify signs it with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.capture.api import SHOPIFY_PATH as WEBHOOK_PATH
from services.capture.settings import DEVELOPMENT_SHOP, DEVELOPMENT_SHOPIFY_SECRET
from services.capture.shopify import signature

__all__ = ["WEBHOOK_PATH", "orders_create", "signed_headers"]
API_VERSION = "2026-01"


def orders_create(document: dict[str, Any], shopify_id: int) -> dict[str, Any]:
    """The body Shopify sends for `document`, an order as POST /v1/orders takes it: its customer, shipping address,
    lines at their unit prices, service level and shipping, and its payment's amount as the total paid."""
    customer, address = document["customer"], document["shipping_address"]
    first, _, last = customer["name"].partition(" ")
    lines = document["lines"]
    subtotal = sum((Decimal(line["unit_price"]) * line["quantity"] for line in lines), Decimal(0))
    level = document["service_level"]
    return {
        "id": shopify_id,
        "created_at": document["placed_at"],
        "currency": document["currency"],
        "email": customer["email"],
        "phone": customer.get("phone"),
        "financial_status": "paid",
        "customer": {"first_name": first, "last_name": last, "email": customer["email"]},
        "shipping_address": {
            "name": address["name"],
            "address1": address["line1"],
            "address2": address.get("line2"),
            "city": address["city"],
            "province_code": address.get("region"),
            "zip": address["postal_code"],
            "country_code": address["country"],
        },
        "line_items": [
            {
                "sku": line["sku"],
                "quantity": line["quantity"],
                "price": line["unit_price"],
                "total_discount": "0.00",
                "requires_shipping": True,
            }
            for line in lines
        ],
        "shipping_lines": [{"code": level.title(), "title": level.title(), "price": document["shipping_price"]}],
        "subtotal_price": str(subtotal),
        "total_price": document["payment"]["amount"],
    }


def signed_headers(raw: bytes, webhook_id: str) -> dict[str, str]:
    """The headers of one delivery of `raw` (each delivery its own webhook id), signed with the development secret."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": DEVELOPMENT_SHOP,
        "X-Shopify-Hmac-Sha256": signature(raw, DEVELOPMENT_SHOPIFY_SECRET),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
