"""`oms returns list|show|approve|reject`: returns as the returns service sees them, and operators' decisions on
those waiting for review."""

from __future__ import annotations

import argparse
from typing import Any, get_args

import httpx

from deploy.cli import api
from deploy.cli.output import CommandError, console, emit_json, table
from services.returns.domain import Status

RETURN_STATUSES = get_args(Status)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "returns", help="list, show, approve or reject returns", description="Returns after delivery."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{list,show,approve,reject}")
    listing = verbs.add_parser(
        "list", parents=[common], help="the latest returns", description="Returns, newest first, with their status."
    )
    listing.add_argument("--status", choices=RETURN_STATUSES, help="only returns in this status")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100, at most 1000)")
    listing.set_defaults(run=returns_list)
    show = verbs.add_parser(
        "show",
        parents=[common],
        help="one return",
        description="A return: lines, RMA, label, receipts, exchange, refunds and charges.",
    )
    show.add_argument("return_id", metavar="ID")
    show.set_defaults(run=returns_show)
    for verb, what in (("approve", "authorise it: RMA and label"), ("reject", "refuse it with a reason")):
        decide = verbs.add_parser(
            verb,
            parents=[common],
            help=f"decide a return under review: {what}",
            description=f"Decide a return waiting for review: {what}.",
        )
        decide.add_argument("return_id", metavar="ID")
        decide.add_argument("--reason", default="decided by an operator", help="why (sent to the customer)")
        decide.set_defaults(run=returns_decide)


def _print(found: list[dict[str, Any]], title: str) -> None:
    rows = [
        [
            r["return_id"],
            r["order_id"],
            r["status"],
            r["rma"],
            ", ".join(f"{line['sku']} {line['received']}/{line['quantity']} ({line['reason']})" for line in r["lines"]),
            "; ".join(r["reasons"]),
        ]
        for r in found
    ]
    console.print(table(title, ["return", "order", "status", "rma", "lines (received/asked)", "reasons"], rows))


def returns_list(args: argparse.Namespace) -> int:
    body = api.get_json(args.settings, "returns", "/v1/returns", {"status": args.status, "limit": args.limit})
    found = list(body["returns"]) if body else []
    if args.json:
        emit_json(found)
    else:
        _print(found, f"{len(found)} returns" + (f" in status {args.status}" if args.status else ""))
    return 0


def returns_show(args: argparse.Namespace) -> int:
    found = api.get_json(args.settings, "returns", f"/v1/returns/{args.return_id}")
    if found is None:
        raise CommandError(f"no return {args.return_id}")
    if args.json:
        emit_json(found)
    else:
        _print([found], f"return {found['return_id']}")
        if found["label"]:
            label = found["label"]
            console.print(f"label: {label['carrier']} {label['service']} to {label['warehouse_id']}, {label['price']}")
        for unit in found["received_units"]:
            kept = "" if unit["expected"] else " (not on the RMA: set aside)"
            console.print(f"received {unit['quantity']} x {unit['sku']} as {unit['disposition']}{kept}")
        if exchange := found["exchange"]:
            settled = f"credit {exchange['credit']}, difference {exchange['difference']}"
            console.print(f"exchange: {settled}, {exchange['status']}")
        for what in ("refunds", "charges"):
            for payment in found[what]:
                error = f": {payment['last_error']}" if payment["last_error"] else ""
                console.print(
                    f"{what[:-1]} {payment['amount']} {payment['currency']} ({payment['idempotency_key']}):"
                    f" {payment['status']} after {payment['attempts']} attempt(s){error}"
                )
    return 0


def returns_decide(args: argparse.Namespace) -> int:
    try:
        with api.client(args.settings, "returns") as http:
            response = http.post(f"/v1/returns/{args.return_id}/{args.verb}", json={"reason": args.reason})
    except httpx.HTTPError as exc:
        raise CommandError(f"returns did not answer ({exc.__class__.__name__})") from exc
    if response.status_code >= 400:
        body = response.json() if response.headers.get("content-type") == "application/json" else {}
        raise CommandError(f"returns answered {response.status_code}: {body.get('detail', response.text[:500])}")
    found = response.json()
    if args.json:
        emit_json(found)
    else:
        console.print(
            f"return {found['return_id']}: {found['status']}" + (f", RMA {found['rma']}" if found["rma"] else "")
        )
    return 0
