"""`oms holds list|show|release|cancel`: orders on hold as capture sees them (their holds and risk assessment), and
operators' decisions on them."""

from __future__ import annotations

import argparse
from typing import Any, get_args

import httpx

from deploy.cli import api
from deploy.cli.output import CommandError, console, emit_json, table
from shared.contracts.events import HoldType

HOLD_TYPES = get_args(HoldType)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "holds", help="list, show, release or cancel orders on hold", description="Orders on hold (risk, credit)."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{list,show,release,cancel}")
    listing = verbs.add_parser(
        "list", parents=[common], help="orders on hold", description="Orders on hold, the longest held first."
    )
    listing.add_argument("--type", choices=HOLD_TYPES, dest="hold_type", help="only orders with a hold of this type")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100, at most 1000)")
    listing.set_defaults(run=holds_list)
    show = verbs.add_parser(
        "show", parents=[common], help="one order's holds", description="An order's holds and risk assessment."
    )
    show.add_argument("order_id", metavar="ORDER")
    show.set_defaults(run=holds_show)
    release = verbs.add_parser(
        "release",
        parents=[common],
        help="release holds (the last one lets the order flow)",
        description="Release an order's holds; when none is left the order goes on to allocation.",
    )
    release.add_argument("order_id", metavar="ORDER")
    release.add_argument("--type", choices=HOLD_TYPES, action="append", dest="hold_types", help="(repeatable)")
    release.add_argument("--note", help="why, for the timeline")
    release.set_defaults(run=holds_release)
    cancel = verbs.add_parser(
        "cancel",
        parents=[common],
        help="cancel an order on hold (the customer is told)",
        description="Cancel an order on hold: nothing was allocated, nothing is released; the customer is told.",
    )
    cancel.add_argument("order_id", metavar="ORDER")
    cancel.add_argument("--reason", default="we could not confirm your order", help="why (sent to the customer)")
    cancel.set_defaults(run=holds_cancel)


def _holds(holds: list[dict[str, Any]]) -> str:
    return "; ".join(f"{h['hold_type']}: {h['reason']}" for h in holds)


def holds_list(args: argparse.Namespace) -> int:
    params = {"hold_type": args.hold_type, "limit": args.limit}
    body = api.get_json(args.settings, "capture", "/v1/holds", params)
    found = list(body["orders"]) if body else []
    if args.json:
        emit_json(found)
        return 0
    rows = [
        [o["order_id"], o["channel"], o["held_since"][:19], f"{o['score']} {o['recommendation']}", _holds(o["holds"])]
        for o in found
    ]
    title = f"{len(found)} orders on hold" + (f" ({args.hold_type})" if args.hold_type else "")
    console.print(table(title, ["order", "channel", "held since", "risk", "holds"], rows))
    return 0


def holds_show(args: argparse.Namespace) -> int:
    found = api.get_json(args.settings, "capture", f"/v1/orders/{args.order_id}/holds")
    if found is None:
        raise CommandError(f"no order {args.order_id}")
    if args.json:
        emit_json(found)
        return 0
    console.print(f"order {found['order_id']}: {found['status']}")
    if found["risk"]:
        risk = found["risk"]
        console.print(f"risk: score {risk['score']}, {risk['level']}, recommends {risk['recommendation']}")
        for rule in risk["rules"]:
            console.print(f"  {rule['rule']} (+{rule['score']}, {rule['hold']} hold): {rule['reason']}")
    rows = [
        [h["hold_type"], h["state"], h["reason"], h["placed_at"][:19], h["released_by"] or "", h["note"] or ""]
        for h in found["holds"]
    ]
    console.print(table("holds", ["type", "state", "reason", "placed", "ended by", "note"], rows))
    return 0


def _post(args: argparse.Namespace, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        with api.client(args.settings, "capture") as http:
            response = http.post(path, json=body)
    except httpx.HTTPError as exc:
        raise CommandError(f"capture did not answer ({exc.__class__.__name__})") from exc
    if response.status_code >= 400:
        answer = response.json() if response.headers.get("content-type") == "application/json" else {}
        raise CommandError(f"capture answered {response.status_code}: {answer.get('detail', response.text[:500])}")
    return response.json()  # type: ignore[no-any-return]


def holds_release(args: argparse.Namespace) -> int:
    body = {"hold_types": args.hold_types, "note": args.note}
    found = _post(args, f"/v1/orders/{args.order_id}/holds/release", {k: v for k, v in body.items() if v})
    if args.json:
        emit_json(found)
    else:
        left = f", still on hold: {', '.join(found['remaining'])}" if found["remaining"] else ""
        console.print(f"order {found['order_id']}: released {', '.join(found['released'])}{left}; {found['status']}")
    return 0


def holds_cancel(args: argparse.Namespace) -> int:
    found = _post(args, f"/v1/orders/{args.order_id}/holds/cancel", {"reason": args.reason})
    if args.json:
        emit_json(found)
    else:
        console.print(f"order {found['order_id']}: {found['status']}")
    return 0
