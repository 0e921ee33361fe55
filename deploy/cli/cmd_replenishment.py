"""`oms replenishment`: what to order. The replenishment suggestions (draft purchase orders) allocation opened, and
per warehouse and SKU the reorder rule's minimum beside the reorder point demand history suggests."""

from __future__ import annotations

import argparse
from typing import Any

from deploy.cli import api
from deploy.cli.output import console, emit_json, table


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "replenishment",
        parents=[common],
        help="what to order: open replenishment suggestions and reorder points",
        description="Replenishment suggestions from allocation (open ones unless --status says otherwise), newest "
        "first; a receipt whose reference is a suggestion's id closes it. Then, per warehouse and SKU with a reorder "
        "rule, its minimum beside the reorder point suggested by demand history (docs/replenishment.md).",
    )
    parser.add_argument("--status", choices=["open", "received", "all"], default="open", help="default: open")
    parser.add_argument("--limit", type=int, default=100, help="at most this many of each (default 100, at most 1000)")
    parser.set_defaults(run=replenishment)


def replenishment(args: argparse.Namespace) -> int:
    body = api.get_json(args.settings, "allocation", "/v1/replenishment", {"status": args.status, "limit": args.limit})
    found: dict[str, Any] = body or {"suggestions": [], "reorder_points": []}
    if args.json:
        emit_json(found)
        return 0
    suggestions, points = found["suggestions"], found["reorder_points"]
    console.print(
        table(
            f"{len(suggestions)} replenishment suggestions ({args.status})",
            ["suggestion", "warehouse", "sku", "supplier", "quantity", "forecast / min / max", "expected by", "status"],
            [
                [
                    s["suggestion_id"],
                    s["warehouse_id"],
                    s["sku"],
                    s["supplier"],
                    s["quantity"],
                    f"{s['forecast']} / {s['minimum']} / {s['maximum']}",
                    s["expected_by"],
                    s["status"] if s["status"] == "open" else f"received ({s['received_by']})",
                ]
                for s in suggestions
            ],
        )
    )
    console.print(
        table(
            f"reorder points (demand over at most {found.get('demand_window_days')} days)",
            ["warehouse", "sku", "minimum", "suggested", "average daily demand", "days", "lead time"],
            [
                [
                    p["warehouse_id"],
                    p["sku"],
                    p["minimum"],
                    p["suggested_reorder_point"],
                    p["average_daily_demand"],
                    p["days_of_history"],
                    p["lead_time_days"],
                ]
                for p in points
            ],
        )
    )
    return 0
