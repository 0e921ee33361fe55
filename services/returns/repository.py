"""Returns' SQL over asyncpg: the order facts it keeps, the returns with their lines, the receipts, and the
payments asked of the provider (refunds and exchange charges)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.contracts import events as ev
from shared.contracts.backorders import quantities

from .domain import CLOSED, OPEN, OrderFacts, Product, Request
from .refunds import PaidLine, PaidOrder, Refund, Refunded


async def save_orders(conn: Conn, orders: Sequence[ev.OrderValidated]) -> None:
    """The batch's orders in one statement (one per order was a round of the executor each)."""
    await conn.execute(
        "INSERT INTO orders (order_id, channel, external_id, country, currency, skus, received_at, prices,"
        " shipping_price, paid)"
        " SELECT o.order_id, o.channel, o.external_id, o.country, o.currency,"
        # text[] travels as a JSON list (an array of arrays does not unnest by row)
        "  ARRAY(SELECT s FROM jsonb_array_elements_text(o.skus::jsonb) WITH ORDINALITY AS e(s, n) ORDER BY n),"
        "  o.received_at, o.prices::jsonb,"
        "  o.shipping_price, o.paid"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],"
        "  $8::text[], $9::numeric[], $10::numeric[]) AS o(order_id, channel, external_id, country, currency, skus,"
        "  received_at, prices, shipping_price, paid)"
        " ON CONFLICT DO NOTHING",
        [o.order_id for o in orders],
        [o.channel for o in orders],
        [o.external_id for o in orders],
        [o.ship_to.country for o in orders],
        [o.currency for o in orders],
        [json.dumps([line.sku for line in o.lines]) for o in orders],
        [o.received_at for o in orders],
        [None if o.prices is None else json.dumps([p.model_dump(mode="json") for p in o.prices]) for o in orders],
        [o.shipping_price for o in orders],
        [o.paid for o in orders],
    )


async def save_shipments(conn: Conn, shipments: Sequence[ev.OrderShipped]) -> None:
    """What each shipment carried, one row per shipment ({sku: units}); a shipment seen again is left as it is. A
    new one waits to be counted in its channel's total (`count_shipments`)."""
    await conn.execute(
        "WITH stored AS (INSERT INTO shipments (shipment_id, order_id, warehouse_id, units)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[]) ON CONFLICT DO NOTHING"
        " RETURNING shipment_id)"
        " INSERT INTO uncounted_shipments (shipment_id) SELECT shipment_id FROM stored",
        [s.pick_task_id for s in shipments],
        [s.order_id for s in shipments],
        [s.warehouse_id for s in shipments],
        [quantities(s.lines) for s in shipments],
    )


async def save_deliveries(conn: Conn, deliveries: Sequence[ev.OrderDelivered]) -> None:
    await conn.execute(
        "INSERT INTO deliveries (order_id, delivered_at) SELECT * FROM unnest($1::uuid[], $2::timestamptz[])"
        " ON CONFLICT DO NOTHING",
        [d.order_id for d in deliveries],
        [d.delivered_at for d in deliveries],
    )


async def save_products(conn: Conn, products: Sequence[ev.ProductUpserted]) -> None:
    await conn.execute(
        "INSERT INTO products (sku, category, weight_grams)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::int[])"
        " ON CONFLICT (sku) DO UPDATE SET category = excluded.category, weight_grams = excluded.weight_grams,"
        " updated_at = now()",
        [p.sku for p in products],
        [p.category for p in products],
        [p.weight_grams for p in products],
    )


async def products(conn: Conn, skus: Iterable[str]) -> dict[str, Product]:
    rows = await conn.fetch("SELECT sku, category, weight_grams FROM products WHERE sku = ANY($1)", list(skus))
    return {r["sku"]: Product(r["category"], r["weight_grams"]) for r in rows}


async def lock_order(conn: Conn, order_id: UUID) -> asyncpg.Record | None:
    """The order's row, locked: requests and decisions about one order's returns are taken one at a time."""
    return await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)


async def order_id_of(conn: Conn, channel: str, external_id: str) -> UUID | None:
    found: UUID | None = await conn.fetchval(
        "SELECT order_id FROM orders WHERE channel = $1 AND external_id = $2", channel, external_id
    )
    return found


async def channel_of(conn: Conn, order_id: UUID) -> str | None:
    found: str | None = await conn.fetchval("SELECT channel FROM orders WHERE order_id = $1", order_id)
    return found


async def facts(conn: Conn, order: asyncpg.Record) -> OrderFacts:
    order_id = order["order_id"]
    shipped: dict[str, dict[str, int]] = {}
    for row in await conn.fetch(
        "SELECT sku, warehouse_id, sum(quantity)::int AS units FROM shipped_units WHERE order_id = $1"
        " GROUP BY sku, warehouse_id",
        order_id,
    ):
        shipped.setdefault(row["sku"], {})[row["warehouse_id"]] = row["units"]
    requested = {
        r["sku"]: r["units"]
        for r in await conn.fetch(
            "SELECT l.sku, sum(CASE WHEN r.status = $2 THEN l.received ELSE l.quantity END)::int AS units"
            " FROM returns r JOIN return_lines l USING (return_id)"
            " WHERE r.order_id = $1 AND r.status = ANY($3) GROUP BY l.sku",
            order_id,
            CLOSED,
            [*OPEN, CLOSED],
        )
    }
    delivered_at = await conn.fetchval("SELECT delivered_at FROM deliveries WHERE order_id = $1", order_id)
    return OrderFacts(
        channel=order["channel"],
        country=order["country"],
        delivered_at=delivered_at,
        shipped=shipped,
        requested=requested,
        ordered=frozenset(order["skus"]),
        units=units_ordered(order),
    )


def units_ordered(order: asyncpg.Record) -> dict[str, int]:
    """Units per SKU of the order's priced lines (as its last change left them); empty for orders announced without
    their prices."""
    units: dict[str, int] = {}
    for line in order["prices"] or []:
        units[line["sku"]] = units.get(line["sku"], 0) + line["quantity"]
    return units


async def return_of_request(conn: Conn, request_key: str) -> UUID | None:
    found: UUID | None = await conn.fetchval("SELECT return_id FROM returns WHERE request_key = $1", request_key)
    return found


async def next_rma_serial(conn: Conn) -> int:
    serial: int = await conn.fetchval("SELECT nextval('rma_serial')")
    return serial


async def insert_return(
    conn: Conn,
    return_id: UUID,
    order_id: UUID,
    request: Request,
    request_key: str | None,
    source: str,
    requested_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO returns (return_id, order_id, request_key, source, status, resolution, note, requested_at,"
        " exchange_for) VALUES ($1, $2, $3, $4, 'review', $5, $6, $7, $8)",
        return_id,
        order_id,
        request_key,
        source,
        request.resolution,
        request.note,
        requested_at,
        [line.model_dump(mode="json") for line in request.exchange_for] if request.exchange_for else None,
    )
    await conn.executemany(
        "INSERT INTO return_lines (return_id, sku, quantity, reason) VALUES ($1, $2, $3, $4)",
        [(return_id, line.sku, line.quantity, line.reason) for line in request.lines],
    )


async def decide(
    conn: Conn,
    return_id: UUID,
    status: str,
    reasons: Sequence[str],
    decided_at: datetime,
    decided_by: str,
    authorised: ev.ReturnAuthorised | None = None,
) -> None:
    await conn.execute(
        "UPDATE returns SET status = $2, reasons = $3, decided_at = $4, decided_by = $5,"
        " rma = $6, warehouse_id = $7, label = $8, expires_at = $9 WHERE return_id = $1",
        return_id,
        status,
        list(reasons),
        decided_at,
        decided_by,
        authorised.rma if authorised else None,
        authorised.label.warehouse_id if authorised else None,
        authorised.label.model_dump(mode="json") if authorised else None,
        authorised.expires_at if authorised else None,
    )


async def order_of_return(conn: Conn, return_id: UUID) -> UUID | None:
    found: UUID | None = await conn.fetchval("SELECT order_id FROM returns WHERE return_id = $1", return_id)
    return found


async def lock_return(conn: Conn, return_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM returns WHERE return_id = $1 FOR UPDATE", return_id)


async def order_of_rma(conn: Conn, rma: str) -> UUID | None:
    found: UUID | None = await conn.fetchval("SELECT order_id FROM returns WHERE rma = $1", rma)
    return found


async def lock_return_by_rma(conn: Conn, rma: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM returns WHERE rma = $1 FOR UPDATE", rma)


async def lines(conn: Conn, return_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM return_lines WHERE return_id = $1 ORDER BY sku", return_id)


async def receipt_known(conn: Conn, warehouse_id: str, receipt: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM received_units WHERE warehouse_id = $1 AND receipt = $2)",
            warehouse_id,
            receipt,
        )
    )


async def record_receipt(
    conn: Conn,
    return_id: UUID,
    report: ev.WarehouseReturnReceived,
    accepted: Sequence[ev.ReceivedLine],
    unexpected: Sequence[ev.ReceivedLine],
) -> None:
    await conn.executemany(
        "INSERT INTO received_units (warehouse_id, receipt, sku, disposition, expected, return_id, quantity,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (warehouse_id, receipt, sku, disposition, expected)"
        " DO UPDATE SET quantity = received_units.quantity + excluded.quantity",
        [
            (
                report.warehouse_id,
                report.receipt,
                line.sku,
                line.disposition,
                expected,
                return_id,
                line.quantity,
                report.occurred_at,
            )
            for expected, found in ((True, accepted), (False, unexpected))
            for line in found
        ],
    )
    await conn.executemany(
        "UPDATE return_lines SET received = received + $3 WHERE return_id = $1 AND sku = $2",
        [(return_id, line.sku, line.quantity) for line in accepted],
    )
    if accepted:
        await conn.execute(
            "INSERT INTO channel_totals (channel, returned) SELECT o.channel, $2 FROM returns r JOIN orders o"
            " USING (order_id) WHERE r.return_id = $1"
            " ON CONFLICT (channel) DO UPDATE SET returned = channel_totals.returned + excluded.returned",
            return_id,
            sum(line.quantity for line in accepted),
        )


async def set_status(conn: Conn, return_id: UUID, status: str, closed_at: datetime | None = None) -> None:
    await conn.execute(
        "UPDATE returns SET status = $2, closed_at = coalesce($3, closed_at) WHERE return_id = $1",
        return_id,
        status,
        closed_at,
    )


async def lock_expired(conn: Conn, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """Open RMAs past their expiry; another instance sweeping at the same moment takes the others."""
    return await conn.fetch(
        "SELECT * FROM returns WHERE status IN ('authorised', 'partially_received') AND expires_at < $1"
        " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


def _view(row: asyncpg.Record, line_rows: Sequence[asyncpg.Record]) -> dict[str, Any]:
    return {
        "return_id": str(row["return_id"]),
        "order_id": str(row["order_id"]),
        "status": row["status"],
        "resolution": row["resolution"],
        "exchange_for": row["exchange_for"],
        "reasons": row["reasons"],
        "rma": row["rma"],
        "warehouse_id": row["warehouse_id"],
        "label": row["label"],
        "requested_at": row["requested_at"].isoformat(),
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
        "decided_by": row["decided_by"],
        "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        "closed_at": row["closed_at"].isoformat() if row["closed_at"] else None,
        "lines": [
            {"sku": r["sku"], "quantity": r["quantity"], "reason": r["reason"], "received": r["received"]}
            for r in line_rows
        ],
    }


async def return_view(conn: Conn, return_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM returns WHERE return_id = $1", return_id)
    if row is None:
        return None
    view = _view(row, await lines(conn, return_id))
    view["refunds"] = await refunds_of_return(conn, return_id)
    view["charges"] = await charges_of_return(conn, return_id)
    view["exchange"] = await exchange_view(conn, return_id)
    view["received_units"] = [
        {k: (str(v) if isinstance(v, UUID) else v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
        for r in await conn.fetch(
            "SELECT warehouse_id, receipt, sku, disposition, expected, quantity, received_at FROM received_units"
            " WHERE return_id = $1 ORDER BY received_at, receipt, sku",
            return_id,
        )
    ]
    return view


async def list_returns(conn: Conn, status: str | None, order_id: UUID | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM returns WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR order_id = $2)"
        " ORDER BY requested_at DESC LIMIT $3",
        status,
        order_id,
        limit,
    )
    found = await conn.fetch(
        "SELECT * FROM return_lines WHERE return_id = ANY($1) ORDER BY sku", [r["return_id"] for r in rows]
    )
    by_return: dict[UUID, list[asyncpg.Record]] = {}
    for line in found:
        by_return.setdefault(line["return_id"], []).append(line)
    return [_view(r, by_return.get(r["return_id"], [])) for r in rows]


# ---- refunds ----


def paid_order(order: asyncpg.Record) -> PaidOrder | None:
    """What the customer paid for the order; None when capture did not announce it (older orders)."""
    if order["prices"] is None or order["paid"] is None:
        return None
    lines = tuple(PaidLine(p["sku"], p["quantity"], Decimal(p["unit_price"])) for p in order["prices"])
    return PaidOrder(lines, order["shipping_price"] or Decimal(0), order["paid"])


async def refunded(conn: Conn, order_id: UUID) -> Refunded:
    """What the order's refunds asked or paid cover (abandoned ones paid nothing)."""
    units: dict[str, int] = {}
    shipping, amount = False, Decimal(0)
    for row in await conn.fetch(
        "SELECT units, shipping, amount FROM refunds WHERE order_id = $1 AND status <> 'abandoned'"
        " AND charge_id IS NULL",
        order_id,
    ):
        for sku, n in row["units"].items():
            units[sku] = units.get(sku, 0) + n
        shipping = shipping or row["shipping"] > 0
        amount += row["amount"]
    return Refunded(units, shipping, amount)


async def insert_refund(
    conn: Conn,
    request: ev.RefundRequested,
    return_id: UUID | None,
    refund: Refund,
    next_try_at: datetime,
    at: datetime,
    charge_id: UUID | None = None,
    change_id: str | None = None,
) -> bool:
    """False when a refund of that idempotency key exists already. Of a return (`return_id`; `charge_id`: the charge
    it pays back) or of an order change (`change_id`)."""
    inserted = await conn.fetchval(
        "INSERT INTO refunds (refund_id, return_id, order_id, idempotency_key, amount, currency, units, shipping,"
        " explanation, status, next_try_at, requested_at, charge_id, change_id) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " $8, $9, 'requested', $10, $11, $12, $13) ON CONFLICT (idempotency_key) DO NOTHING RETURNING true",
        request.refund_id,
        return_id,
        request.order_id,
        request.idempotency_key,
        request.amount,
        request.currency,
        refund.units,
        refund.shipping,
        list(refund.explanation),
        next_try_at,
        at,
        charge_id,
        change_id,
    )
    return bool(inserted)


async def lock_refund(conn: Conn, refund_id: UUID) -> asyncpg.Record | None:
    """The refund with its order's reference and, for a return's, when the return was asked for."""
    return await conn.fetchrow(
        "SELECT f.*, o.channel, o.external_id, r.requested_at AS return_requested_at FROM refunds f"
        " JOIN orders o USING (order_id) LEFT JOIN returns r USING (return_id) WHERE f.refund_id = $1"
        " FOR UPDATE OF f",
        refund_id,
    )


# Refunds and charges are asked of the provider the same way: under an idempotency key, asked again when due,
# settled or abandoned. Their tables share these columns.
Payments = Literal["refunds", "charges"]
_KEY = {"refunds": "refund_id", "charges": "charge_id"}


async def settle(conn: Conn, table: Payments, payment_id: UUID, provider_reference: str, at: datetime) -> None:
    await conn.execute(
        f"UPDATE {table} SET status = 'succeeded', provider_reference = $2, settled_at = $3, next_try_at = NULL"
        f" WHERE {_KEY[table]} = $1",
        payment_id,
        provider_reference,
        at,
    )


async def retry_at(conn: Conn, table: Payments, payment_id: UUID, at: datetime, error: str) -> None:
    await conn.execute(
        f"UPDATE {table} SET next_try_at = $2, last_error = $3 WHERE {_KEY[table]} = $1", payment_id, at, error
    )


async def abandon(conn: Conn, table: Payments, payment_id: UUID, error: str, at: datetime) -> None:
    await conn.execute(
        f"UPDATE {table} SET status = 'abandoned', last_error = $2, settled_at = $3, next_try_at = NULL"
        f" WHERE {_KEY[table]} = $1",
        payment_id,
        error,
        at,
    )


async def lock_due(conn: Conn, table: Payments, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """Payments waiting for another attempt (after a failure, or no answer in time); other instances skip them."""
    return await conn.fetch(
        f"SELECT f.*, o.channel, o.external_id FROM {table} f JOIN orders o USING (order_id)"
        " WHERE f.status = 'requested' AND f.next_try_at <= $1 ORDER BY f.next_try_at LIMIT $2"
        " FOR UPDATE OF f SKIP LOCKED",
        now,
        limit,
    )


async def count_attempt(conn: Conn, table: Payments, payment_id: UUID, next_try_at: datetime) -> int:
    attempts: int = await conn.fetchval(
        f"UPDATE {table} SET attempts = attempts + 1, next_try_at = $2 WHERE {_KEY[table]} = $1 RETURNING attempts",
        payment_id,
        next_try_at,
    )
    return attempts


async def save_change(conn: Conn, applied: ev.OrderChangeApplied, at: datetime) -> bool:
    """Record an applied change of a known order; False when it was recorded before. The order's lines, prices and
    payment become the change's, unless a later change was recorded first."""
    inserted = await conn.fetchval(
        "INSERT INTO order_changes (order_id, change_id, order_version, total, due_back, applied_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
        applied.order_id,
        applied.change_id,
        applied.order_version,
        applied.total,
        applied.due_back,
        at,
    )
    if not inserted:
        return False
    await conn.execute(
        "UPDATE orders SET prices = $2, skus = $3, shipping_price = $4, paid = $5, version = $6"
        " WHERE order_id = $1 AND version < $6",
        applied.order_id,
        [line.model_dump(mode="json") for line in applied.lines],
        sorted({line.sku for line in applied.lines}),
        applied.shipping_price,
        applied.paid,
        applied.order_version,
    )
    return True


async def refunds_of_order(conn: Conn, order_id: UUID) -> list[dict[str, Any]]:
    """Every refund of the order, oldest first: of a return (`return_id`) or of an order change (`change_id`)."""
    rows = await conn.fetch(
        "SELECT refund_id, return_id, change_id, idempotency_key, amount, currency, status, attempts, last_error,"
        " provider_reference, explanation, requested_at, settled_at FROM refunds WHERE order_id = $1"
        " ORDER BY requested_at, refund_id",
        order_id,
    )
    return [
        {
            **_payment_view(r, "refund_id"),
            "return_id": None if r["return_id"] is None else str(r["return_id"]),
            "change_id": r["change_id"],
            "explanation": r["explanation"],
        }
        for r in rows
    ]


async def refunds_of_return(conn: Conn, return_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT refund_id, idempotency_key, amount, currency, status, attempts, last_error, provider_reference,"
        " explanation, requested_at, settled_at FROM refunds WHERE return_id = $1 ORDER BY requested_at",
        return_id,
    )
    return [{**_payment_view(r, "refund_id"), "explanation": r["explanation"]} for r in rows]


def _payment_view(r: asyncpg.Record, key: str) -> dict[str, Any]:
    return {
        key: str(r[key]),
        "idempotency_key": r["idempotency_key"],
        "amount": str(r["amount"].quantize(Decimal("0.01"))),
        "currency": r["currency"],
        "status": r["status"],
        "attempts": r["attempts"],
        "last_error": r["last_error"],
        "provider_reference": r["provider_reference"],
        "requested_at": r["requested_at"].isoformat(),
        "settled_at": r["settled_at"].isoformat() if r["settled_at"] else None,
    }


async def count_shipments(conn: Conn) -> None:
    """Add the shipments waiting to be counted whose order is known to their channel's total, each once: those
    another instance is counting at the moment are left to it. Each is looked up by its keys (a lateral lookup the
    planner cannot turn into a join), so a round costs what was shipped since the last, whatever the history: as a
    join, the planner read every shipment stored."""
    await conn.execute(
        "WITH taken AS (SELECT u.shipment_id, o.channel, s.units FROM uncounted_shipments u"
        "  CROSS JOIN LATERAL (SELECT order_id, units FROM shipments WHERE shipment_id = u.shipment_id LIMIT 1) s"
        "  CROSS JOIN LATERAL (SELECT channel FROM orders WHERE order_id = s.order_id LIMIT 1) o"
        "  FOR UPDATE OF u SKIP LOCKED),"
        " counted AS (DELETE FROM uncounted_shipments u USING taken t WHERE u.shipment_id = t.shipment_id"
        "  RETURNING t.channel, t.units)"
        " INSERT INTO channel_totals (channel, shipped)"
        " SELECT channel, sum(n::int) FROM counted, jsonb_each_text(units) AS e(sku, n)"
        " GROUP BY channel ORDER BY channel"
        " ON CONFLICT (channel) DO UPDATE SET shipped = channel_totals.shipped + excluded.shipped"
    )


async def return_rates(conn: Conn, by: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Units returned (received on their RMA) per unit shipped, by channel (from the running totals) or by SKU,
    the highest rate first."""
    if by == "channel":
        await count_shipments(conn)
        rows = await conn.fetch(
            "SELECT channel AS key, shipped, returned FROM channel_totals WHERE shipped > 0"
            " ORDER BY returned::float / shipped DESC, 1 LIMIT $1",
            limit,
        )
    else:
        rows = await conn.fetch(
            "SELECT s.sku AS key, sum(s.quantity)::int AS shipped, coalesce(sum(r.returned), 0)::int AS returned"
            " FROM (SELECT order_id, sku, sum(quantity) AS quantity FROM shipped_units GROUP BY order_id, sku) s"
            " JOIN orders o USING (order_id)"
            " LEFT JOIN (SELECT t.order_id, l.sku, sum(l.received) AS returned FROM returns t"
            "            JOIN return_lines l USING (return_id) GROUP BY t.order_id, l.sku) r USING (order_id, sku)"
            " GROUP BY s.sku ORDER BY coalesce(sum(r.returned), 0)::float / sum(s.quantity) DESC, 1 LIMIT $1",
            limit,
        )
    return [
        {
            by: r["key"],
            "shipped": r["shipped"],
            "returned": r["returned"],
            "rate": round(r["returned"] / r["shipped"], 4),
        }
        for r in rows
    ]


async def insert_exchange(conn: Conn, exchange: ev.ExchangeRequested, status: str, at: datetime) -> bool:
    """False when the return's exchange was asked for already."""
    inserted = await conn.fetchval(
        "INSERT INTO exchanges (exchange_id, return_id, order_id, credit, difference, requested_at, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
        exchange.exchange_id,
        exchange.return_id,
        exchange.order_id,
        exchange.credit,
        exchange.difference,
        at,
        status,
    )
    return bool(inserted)


async def exchange_of_charge(conn: Conn, charge_id: UUID) -> asyncpg.Record | None:
    """The exchange a charge is for, with what the customer gets instead (from the return) and its RMA."""
    return await conn.fetchrow(
        "SELECT e.*, r.exchange_for, r.rma FROM charges c JOIN exchanges e USING (exchange_id)"
        " JOIN returns r ON r.return_id = e.return_id WHERE c.charge_id = $1",
        charge_id,
    )


async def set_exchange_status(conn: Conn, exchange_id: UUID, status: str) -> None:
    await conn.execute("UPDATE exchanges SET status = $2 WHERE exchange_id = $1", exchange_id, status)


async def insert_charge(
    conn: Conn, request: ev.ChargeRequested, exchange_id: UUID, return_id: UUID, next_try_at: datetime, at: datetime
) -> bool:
    """False when a charge of that idempotency key exists already."""
    inserted = await conn.fetchval(
        "INSERT INTO charges (charge_id, exchange_id, return_id, order_id, idempotency_key, amount, currency, status,"
        " next_try_at, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', $8, $9)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING true",
        request.charge_id,
        exchange_id,
        return_id,
        request.order_id,
        request.idempotency_key,
        request.amount,
        request.currency,
        next_try_at,
        at,
    )
    return bool(inserted)


async def order_of_charge(conn: Conn, charge_id: UUID) -> UUID | None:
    found: UUID | None = await conn.fetchval("SELECT order_id FROM charges WHERE charge_id = $1", charge_id)
    return found


async def lock_charge(conn: Conn, charge_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM charges WHERE charge_id = $1 FOR UPDATE", charge_id)


async def charges_of_return(conn: Conn, return_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT charge_id, idempotency_key, amount, currency, status, attempts, last_error, provider_reference,"
        " requested_at, settled_at FROM charges WHERE return_id = $1 ORDER BY requested_at",
        return_id,
    )
    return [_payment_view(r, "charge_id") for r in rows]


async def exchange_view(conn: Conn, return_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT exchange_id, credit, difference, status FROM exchanges WHERE return_id = $1", return_id
    )
    if row is None:
        return None
    return {
        "exchange_id": str(row["exchange_id"]),
        "credit": str(row["credit"].quantize(Decimal("0.01"))),
        "difference": str(row["difference"].quantize(Decimal("0.01"))),
        "status": row["status"],
    }
