"""`oms kpi`: the KPIs operations live by (docs/kpis.md) for the orders placed in a period, for all of them or per
channel, read from the KPI service (GET /v1/kpis)."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import Any

from deploy.cli import api
from deploy.cli.output import CommandError, console, emit_json, table


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
    columns = [_row(g, found["currency"]) for g in found["groups"]]
    rows = [[label, *(column[n] for column in columns)] for n, label in enumerate(LABELS)]
    console.print(table(None, ["KPI", *(g["group"] for g in found["groups"])], rows))
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _row(g: dict[str, Any], currency: str) -> list[str]:
    """One group's figures, in the order of LABELS."""
    orders, perfect, cycle, holds = g["orders"], g["perfect_order"], g["cycle_time"], g["holds"]
    cost = g["cost_per_order"]["amount"]
    return [
        str(orders["placed"]),
        f"{orders['delivered']} / {orders['cancelled']} / {orders['open']} / {orders['rejected']}",
        _pct(perfect["rate_all_four"]),
        _pct(perfect["rate_product_of_components"]),
        " / ".join(_pct(v) for v in perfect["components"].values()),
        f"{_hours(cycle['internal']['p50_seconds'])} / {_hours(cycle['internal']['p90_seconds'])}",
        f"{_hours(cycle['total']['p50_seconds'])} / {_hours(cycle['total']['p90_seconds'])}",
        " / ".join(_pct(g["fill_rate"][level]) for level in ("line", "unit", "order")),
        _pct(g["on_time_delivery"]["rate"]),
        _pct(g["backorder_rate"]["rate"]),
        _pct(g["return_rate"]["rate"]),
        f"{holds['held']} / {holds['on_hold']} / {_hours(holds['hold_time']['p50_seconds'])}",
        "-" if cost is None else f"{cost} {currency}",
    ]


LABELS = [
    "orders placed",
    "delivered / cancelled / open / rejected",
    "perfect order (all four, SCOR)",
    "perfect order (product, APQC)",
    "on time / in full / damage-free / documents",
    "internal cycle p50 / p90",
    "total cycle p50 / p90",
    "fill rate line / unit / order",
    "on-time delivery",
    "backorder rate",
    "return rate",
    "held / on hold / hold time p50",
    "cost per order",
]
