"""`oms dropship list`: the purchase orders still with dropship suppliers (issued, acknowledged or partially
accepted, not yet shipped), oldest first, with the day each must answer and ship by (docs/dropship.md)."""

from __future__ import annotations

import argparse
from typing import Any

from deploy.cli import api
from deploy.cli.output import console, emit_json


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "dropship", help="dropship purchase orders still with their suppliers", description=__doc__
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser(
        "list",
        parents=[common],
        help="open purchase orders, oldest first",
        description="Purchase orders fulfillment issued to dropship suppliers and still open (not shipped, declined,"
        " timed out or cancelled), oldest first.",
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100, at most 1000)")
    listing.set_defaults(run=list_open)


def list_open(args: argparse.Namespace) -> int:
    body = api.get_json(args.settings, "fulfillment", "/v1/purchase-orders", {"limit": args.limit})
    found: list[dict[str, Any]] = (body or {}).get("purchase_orders", [])
    if args.json:
        emit_json(found)
        return 0
    console.print(f"{len(found)} open purchase orders, oldest first:")
    for po in found:
        lines = ", ".join(f"{line['sku']} x{line['quantity']}" for line in po["lines"])
        console.print(
            f"  {po['purchase_order_id']}  {po['supplier_id']}  order {po['order_id']}: {lines}; {po['status']},"
            f" answer by {po['answer_by']}, ship by {po['ship_by']}",
            soft_wrap=True,
        )
    return 0
