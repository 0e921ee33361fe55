"""`oms inventory show` and `oms inventory receive`."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

from deploy.cli import api
from deploy.cli.output import CommandError, console, emit_json, errors, table
from deploy.cli.settings import CliSettings
from deploy.local.client import PipelineClient
from shared.contracts import topics
from shared.contracts.events import InventoryAdjusted


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("inventory", help="show or receive stock", description="Stock per warehouse and SKU.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{show,receive}")
    show = verbs.add_parser(
        "show",
        parents=[common],
        help="on hand, reserved and available per warehouse and SKU",
        description="Stock rows from allocation, ordered by warehouse and SKU.",
    )
    show.add_argument("--sku", help="only this SKU")
    show.add_argument("--warehouse", help="only this warehouse")
    show.add_argument(
        "--low",
        nargs="?",
        type=int,
        const=-1,
        metavar="N",
        help="only SKUs with at most N available (default: allocation's low-stock threshold)",
    )
    show.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100, at most 1000)")
    show.set_defaults(run=inventory_show)
    receive = verbs.add_parser(
        "receive",
        parents=[common],
        help="record units received at a warehouse",
        description="Publish a receipt on oms.inventory.adjustments, as a warehouse system does, with a unique "
        "reference (a receipt line is applied once per reference and SKU), then wait for allocation to apply it.",
    )
    receive.add_argument("warehouse", metavar="WAREHOUSE", help="warehouse id, e.g. ams")
    receive.add_argument("sku", metavar="SKU")
    receive.add_argument("quantity", metavar="QTY", type=int, help="units received (1 or more)")
    receive.add_argument("--reference", help="the warehouse's receipt reference (default: a new unique one)")
    receive.add_argument("--no-wait", action="store_true", help="do not wait for allocation to apply it")
    receive.set_defaults(run=inventory_receive)


def _stock(
    settings: CliSettings, sku: str | None, warehouse: str | None, limit: int, max_available: int | None
) -> list[dict[str, Any]]:
    params = {"sku": sku, "warehouse": warehouse, "limit": limit, "max_available": max_available}
    body = api.get_json(settings, "allocation", "/v1/stock", params)
    return list(body["stock"]) if body else []


def _print_stock(rows: list[dict[str, Any]], title: str) -> None:
    console.print(
        table(
            title,
            ["warehouse", "sku", "on hand", "reserved", "available", "updated"],
            [[r["warehouse_id"], r["sku"], r["on_hand"], r["reserved"], r["available"], r["updated_at"]] for r in rows],
        )
    )


def inventory_show(args: argparse.Namespace) -> int:
    max_available = args.low
    if max_available == -1:
        threshold = api.metric_value(args.settings, "allocation", "oms_stock_low_threshold_units")
        if threshold is None:
            raise CommandError("allocation does not report its low-stock threshold yet; give one: --low N")
        max_available = int(threshold)
    rows = _stock(args.settings, args.sku, args.warehouse, args.limit, max_available)
    if args.json:
        emit_json(rows)
    else:
        low = f", at most {max_available} available" if max_available is not None else ""
        _print_stock(rows, f"{len(rows)} stock rows{low}" + (" (limit reached)" if len(rows) == args.limit else ""))
    return 0


def inventory_receive(args: argparse.Namespace) -> int:
    try:
        receipt = InventoryAdjusted(
            warehouse_id=args.warehouse,
            sku=args.sku,
            kind="receipt",
            quantity=args.quantity,
            reference=args.reference or f"oms-cli-{uuid.uuid4()}",
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if receipt.quantity < 1:
        raise CommandError("a receipt adds at least one unit")
    pipeline = PipelineClient(args.settings.local)
    asyncio.run(
        pipeline.publish(
            topics.INVENTORY_ADJUSTMENTS.name,
            [(f"{receipt.warehouse_id}:{receipt.sku}", receipt.model_dump(mode="json"))],
        )
    )
    rows: list[dict[str, Any]] = []
    if not args.no_wait:
        with errors.status("waiting for allocation to apply the receipt"):
            asyncio.run(pipeline.wait_caught_up("oms-allocation", [topics.INVENTORY_ADJUSTMENTS.name]))
        rows = _stock(args.settings, receipt.sku, receipt.warehouse_id, 1, None)
    if args.json:
        emit_json({"receipt": receipt.model_dump(mode="json"), "stock": rows[0] if rows else None})
    else:
        console.print(f"receipt {receipt.reference}: {receipt.quantity} x {receipt.sku} at {receipt.warehouse_id}")
        if rows:
            _print_stock(rows, "stock now")
    return 0
