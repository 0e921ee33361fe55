"""The catalogue copy a service keeps from oms.catalog.products (a `products` table in its own schema)."""

from __future__ import annotations

from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.contracts.events import ProductUpserted


async def on_product_upserted(conn: Conn, msgs: list[Inbound[ProductUpserted]]) -> None:
    """Upsert the products, one statement for all; of several upserts of one SKU the last read wins."""
    latest = {msg.payload.sku: msg.payload for msg in msgs}
    products = [latest[sku] for sku in sorted(latest)]
    await conn.execute(
        "INSERT INTO products (sku, name, weight_grams, active)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bool[])"
        " ON CONFLICT (sku) DO UPDATE SET name = excluded.name, weight_grams = excluded.weight_grams,"
        " active = excluded.active, updated_at = now()",
        [p.sku for p in products],
        [p.name for p in products],
        [p.weight_grams for p in products],
        [p.active for p in products],
    )
