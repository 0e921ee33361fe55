"""The catalogue copy a service keeps from oms.catalog.products (a `products` table in its own schema)."""

from __future__ import annotations

from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.contracts.events import ProductUpserted


async def on_product_upserted(conn: Conn, msg: Inbound[ProductUpserted]) -> None:
    product = msg.payload
    await conn.execute(
        "INSERT INTO products (sku, name, weight_grams, active) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (sku) DO UPDATE SET name = excluded.name, weight_grams = excluded.weight_grams,"
        " active = excluded.active, updated_at = now()",
        product.sku,
        product.name,
        product.weight_grams,
        product.active,
    )
