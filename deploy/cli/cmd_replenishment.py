"""`oms replenishment`: what to order. The replenishment suggestions (draft purchase orders) allocation opened, and
per warehouse and SKU the reorder rule's minimum beside the reorder point demand history suggests."""

from __future__ import annotations

import argparse
from typing import Any

from deploy.cli import api
from deploy.cli.output import console, emit_json


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
    # One line each rather than a table: the suggestion id is what a receipt's reference names, so it stays whole.
    console.print(f"{len(suggestions)} replenishment suggestions ({args.status}), newest first:")
    for s in suggestions:
        state = "open" if s["status"] == "open" else f"received under {s['received_by']}"
        console.print(
            f"  {s['suggestion_id']}  {s['warehouse_id']}  {s['sku']}: order {s['quantity']} from {s['supplier']},"
            f" expected by {s['expected_by']} (forecast {s['forecast']}, minimum {s['minimum']}, maximum"
            f" {s['maximum']}, packs of {s['pack_multiple']}); {state}",
            soft_wrap=True,
        )
    console.print(f"reorder points from demand over at most {found.get('demand_window_days')} days:")
    for p in points:
        days = f"{p['days_of_history']} day" + ("" if p["days_of_history"] == 1 else "s")
        console.print(
            f"  {p['warehouse_id']}  {p['sku']}: minimum {p['minimum']}, suggested {p['suggested_reorder_point']}"
            f" ({p['average_daily_demand']} a day over {days}, lead time {p['lead_time_days']} days)",
            soft_wrap=True,
        )
    return 0
