"""`oms kpi`: the KPIs operations live by (docs/kpis.md) for the orders placed in a period, for all of them or per
channel, read from the KPI service (GET /v1/kpis)."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import Any

from deploy.cli import api
from deploy.cli.output import CommandError, console, emit_json


def moment(text: str) -> datetime:
    """A day (its midnight, UTC) or a moment (UTC unless it says otherwise)."""
    try:
        found = datetime.fromisoformat(text) if "T" in text or " " in text else None
        found = found or datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-12-01) or a moment (2026-12-01T08:00Z)"
        ) from exc
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "kpi",
        parents=[common],
        help="the KPIs of the orders placed in a period (perfect order, cycle times, fill rates, ...)",
        description="Perfect order rate (both ways), order cycle times (p50, p90), first-time fill rates, on-time "
        "delivery, backorder and return rates, holds and cost per order, over the orders placed from --since up to "
        "--until (default: now; --since defaults to a day before). Definitions and sources: docs/kpis.md.",
    )
    parser.add_argument("--since", type=moment, help="a day (2026-12-01) or a moment (2026-12-01T08:00Z); UTC")
    parser.add_argument("--until", type=moment, help="excluded; default: now")
    parser.add_argument("--by", choices=["channel"], help="one report per channel")
    parser.set_defaults(run=kpi)


def kpi(args: argparse.Namespace) -> int:
    params = {
        "since": args.since.isoformat() if args.since else None,
        "until": args.until.isoformat() if args.until else None,
        "by": args.by,
    }
    found = api.get_json(args.settings, "kpis", "/v1/kpis", params)
    if found is None:
        raise CommandError("the KPI service has no /v1/kpis (is it up to date?)")
    if args.json:
        emit_json(found)
        return 0
    console.print(f"orders placed from {found['since']} until {found['until']}:")
    for group in found["groups"]:
        console.print(f"{group['group']}:")
        for label, value in _lines(group, found["currency"]):
            console.print(f"  {label}: {value}", soft_wrap=True)
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _lines(g: dict[str, Any], currency: str) -> list[tuple[str, str]]:
    """One group's figures, a line each (a table of many channels would not fit a terminal)."""
    orders, perfect, cycle, holds, fill = g["orders"], g["perfect_order"], g["cycle_time"], g["holds"], g["fill_rate"]
    parts = perfect["components"]
    cost = g["cost_per_order"]
    return [
        (
            "orders",
            f"{orders['placed']} placed: {orders['delivered']} delivered, {orders['cancelled']} cancelled,"
            f" {orders['open']} open; {orders['rejected']} refused",
        ),
        (
            "perfect order",
            f"{_pct(perfect['rate_all_four'])} meet all four (SCOR), {_pct(perfect['rate_product_of_components'])}"
            f" as the product (APQC) of {_pct(parts['on_time'])} on time, {_pct(parts['in_full'])} in full,"
            f" {_pct(parts['damage_free'])} damage-free, {_pct(parts['correct_documents'])} correct documents"
            f" ({perfect['orders']} delivered)",
        ),
        (
            "cycle time internal",
            f"p50 {_hours(cycle['internal']['p50_seconds'])}, p90 {_hours(cycle['internal']['p90_seconds'])}",
        ),
        (
            "cycle time total",
            f"p50 {_hours(cycle['total']['p50_seconds'])}, p90 {_hours(cycle['total']['p90_seconds'])}",
        ),
        (
            "fill rate (first time)",
            f"{_pct(fill['line'])} of lines, {_pct(fill['unit'])} of units, {_pct(fill['order'])} of orders",
        ),
        (
            "on-time delivery",
            f"{_pct(g['on_time_delivery']['rate'])} (tolerance {g['on_time_delivery']['tolerance_days']} days)",
        ),
        ("backorder rate", f"{_pct(g['backorder_rate']['rate'])} of lines"),
        ("return rate", f"{_pct(g['return_rate']['rate'])} of delivered orders"),
        (
            "holds",
            f"{holds['held']} held, {holds['on_hold']} still on hold; hold time p50"
            f" {_hours(holds['hold_time']['p50_seconds'])}, p90 {_hours(holds['hold_time']['p90_seconds'])}",
        ),
        (
            "cost per order",
            ("-" if cost["amount"] is None else f"{cost['amount']} {currency}")
            + f" ({cost['orders']} priced, {cost['unpriced']} not)",
        ),
    ]
