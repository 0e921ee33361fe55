"""`oms order show ID`, `oms order submit FILE` and `oms order change ID ...`."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from deploy.cli import api
from deploy.cli.output import CommandError, console, emit_json, errors, progress, table
from deploy.cli.settings import CliSettings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "order", help="show or submit orders", description="Orders: look one up, or submit some."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{show,submit,change}")
    show = verbs.add_parser(
        "show",
        parents=[common],
        help="status, timeline, shipments and messages of an order",
        description="An order as the services see it: capture's status and timeline, fulfillment's pick tasks "
        "and shipments, notifications' messages (kinds and delivery state; no addresses), allocation's priority "
        "(its components, score and band).",
    )
    show.add_argument("order_id", metavar="ID", help="the order id capture gave (a UUID)")
    show.set_defaults(run=order_show)
    submit = verbs.add_parser(
        "submit",
        parents=[common],
        help="submit orders from a JSON file",
        description="POST each order to capture's /v1/orders. FILE holds one generic order (a JSON object) or a "
        "list of them; '-' reads standard input. Exit status 1 if any order was refused.",
    )
    submit.add_argument("file", metavar="FILE", help="JSON file with an order or a list of orders, or -")
    submit.set_defaults(run=order_submit)
    change = verbs.add_parser(
        "change",
        parents=[common],
        help="change an order before it is picked",
        description="POST a change to capture's /v1/orders/ID/changes: a new shipping address, service level or line "
        "quantities (the units still to come; 0 removes a line). A higher total waits for the channel's payment; a "
        "lower one makes the difference due back, refunded by returns once the change is applied. Exit status 1 if the "
        "change is refused.",
    )
    change.add_argument("order_id", metavar="ID", help="the order id capture gave (a UUID)")
    change.add_argument("--ship-to", metavar="JSON", help="the new shipping address, a JSON object (as in an order)")
    change.add_argument("--service-level", choices=["standard", "express", "overnight"])
    change.add_argument(
        "--line",
        action="append",
        default=[],
        metavar="SKU=QTY[@PRICE]",
        help="a line's new quantity; a SKU the order does not have needs its unit price (repeatable)",
    )
    change.add_argument("--change-id", help="the change's id (default: a new one); repeating it changes nothing")
    change.add_argument("--reason", default="customer request")
    change.set_defaults(run=order_change)


def _best_effort(settings: CliSettings, service: str, path: str) -> tuple[Any | None, str | None]:
    """A related view that must not stop the command when its service is away."""
    try:
        return api.get_json(settings, service, path), None
    except CommandError as exc:
        return None, str(exc)


def order_show(args: argparse.Namespace) -> int:
    try:
        order_id = uuid.UUID(args.order_id)
    except ValueError as exc:
        raise CommandError(f"{args.order_id!r} is not an order id (a UUID)") from exc
    order = api.get_json(args.settings, "capture", f"/v1/orders/{order_id}")
    if order is None:
        raise CommandError(f"capture knows no order {order_id}")
    shipments, shipments_error = _best_effort(args.settings, "fulfillment", f"/v1/orders/{order_id}/shipments")
    messages, messages_error = _best_effort(args.settings, "notifications", f"/v1/orders/{order_id}/messages")
    # None while allocation has not taken the order (on hold, rejected, or not there yet)
    priority, priority_error = _best_effort(args.settings, "allocation", f"/v1/orders/{order_id}/priority")
    view = {
        **order,
        "priority": priority,
        "shipments": shipments["shipments"] if shipments else None,
        "messages": messages["messages"] if messages else None,
        "unavailable": [e for e in (shipments_error, messages_error, priority_error) if e],
    }
    if args.json:
        emit_json(view)
        return 0
    console.print(
        f"[bold]order {view['order_id']}[/]  {view['channel']}:{view['external_id']}  status [bold]{view['status']}[/]"
        f"  total {view['total']} {view['currency']}"
    )
    for reason in view.get("reasons") or []:
        console.print(f"  rejected: {reason}")
    if view["priority"] is not None:
        p = view["priority"]
        parts = ", ".join(f"{c['name']} {c['points']} ({c['detail']})" for c in p["components"])
        console.print(f"  priority {p['score']} (band {p['band']}): {parts}")
    console.print(
        table(
            "timeline",
            ["when", "step", "detail"],
            [[s["occurred_at"], s["status"], s["detail"]] for s in view["timeline"]],
        )
    )
    if view["shipments"] is not None:
        console.print(
            table(
                "shipments",
                ["pick task", "warehouse", "status", "lines", "carrier", "tracking", "shipped", "delivered"],
                [
                    [
                        s["pick_task_id"],
                        s["warehouse_id"],
                        s.get("last_carrier_status") or s["status"],
                        ", ".join(f"{line['sku']} x{line['quantity']}" for line in s["lines"]),
                        s["carrier"],
                        s["tracking_number"],
                        s["shipped_at"],
                        s["delivered_at"],
                    ]
                    for s in view["shipments"]
                ],
            )
        )
    if view["messages"] is not None:
        console.print(
            table(
                "messages",
                ["kind", "channel", "status", "attempts", "sent", "last error"],
                [
                    [m["kind"], m["channel"], m["status"], m["attempts"], m["sent_at"], m["last_error"]]
                    for m in view["messages"]
                ],
            )
        )
    for problem in view["unavailable"]:
        errors.print(f"[yellow]not shown:[/] {problem}")
    return 0


def _read_orders(file: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
        document = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"cannot read orders from {file}: {exc}") from exc
    orders = document if isinstance(document, list) else [document]
    if not all(isinstance(o, dict) for o in orders):
        raise CommandError(f"{file} must hold an order (a JSON object) or a list of them")
    return orders


def _submit_one(http: httpx.Client, order: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"external_id": order.get("external_id")}
    response = http.post("/v1/orders", json=order)
    if response.status_code == 202:
        return {**result, **response.json()}
    detail = (
        response.json().get("detail")
        if response.headers.get("content-type", "").startswith("application/json")
        else None
    )
    if isinstance(detail, list):  # pydantic's errors: where and what, without the submitted values
        reasons = [f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail]
    else:
        reasons = [str(detail or response.text[:200])]
    return {**result, "error": response.status_code, "reasons": reasons}


def order_submit(args: argparse.Namespace) -> int:
    orders = _read_orders(args.file)
    results = []
    try:
        with api.client(args.settings, "capture") as http, progress(args.json or len(orders) < 2) as bar:
            task = bar.add_task("submitting orders", total=len(orders))
            for order in orders:
                results.append(_submit_one(http, order))
                bar.advance(task)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"capture at {args.settings.urls['capture']} did not answer ({exc.__class__.__name__})"
        ) from exc
    refused = [r for r in results if "error" in r]
    if args.json:
        emit_json(results)
    else:
        console.print(
            table(
                f"{len(results) - len(refused)} accepted, {len(refused)} refused",
                ["external id", "order id", "status", "note"],
                [
                    [
                        r["external_id"],
                        r.get("order_id", "-"),
                        r.get("status", f"HTTP {r.get('error')}"),
                        "; ".join(r["reasons"]) if "reasons" in r else ("duplicate" if r.get("duplicate") else ""),
                    ]
                    for r in results
                ],
            )
        )
    return 1 if refused else 0


def _changed_line(text: str) -> dict[str, Any]:
    sku, _, rest = text.partition("=")
    quantity, _, price = rest.partition("@")
    if not sku or not quantity.isdigit():
        raise CommandError(f"--line {text!r}: write SKU=QTY or SKU=QTY@PRICE")
    return {"sku": sku, "quantity": int(quantity), **({"unit_price": price} if price else {})}


def order_change(args: argparse.Namespace) -> int:
    try:
        order_id = uuid.UUID(args.order_id)
        ship_to = json.loads(args.ship_to) if args.ship_to else None
    except ValueError as exc:
        raise CommandError(f"{args.order_id!r} is not an order id, or --ship-to is not JSON ({exc})") from exc
    body: dict[str, Any] = {"change_id": args.change_id or f"oms-{uuid.uuid4()}", "reason": args.reason}
    if ship_to is not None:
        body["shipping_address"] = ship_to
    if args.service_level:
        body["service_level"] = args.service_level
    if args.line:
        body["lines"] = [_changed_line(line) for line in args.line]
    try:
        with api.client(args.settings, "capture") as http:
            response = http.post(f"/v1/orders/{order_id}/changes", json=body)
    except httpx.HTTPError as exc:
        raise CommandError(f"capture did not answer ({exc.__class__.__name__})") from exc
    answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 202:
        detail = answer.get("detail", response.text[:500])
        if isinstance(detail, list):  # pydantic's errors: where and what
            detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail)
        if args.json:
            emit_json({"error": response.status_code, "detail": detail})
        else:
            errors.print(f"[red]change refused ({response.status_code}):[/] {detail}")
        return 1
    if args.json:
        emit_json(answer)
        return 0
    console.print(
        f"[bold]change {answer['change_id']}[/] of order {answer['order_id']}: {answer['state']}"
        f"{' (repeat)' if answer['duplicate'] else ''}, version {answer['version']}, total {answer['total_before']}"
        f" -> {answer['total_after']}, to pay {answer['to_pay']}, due back {answer['due_back']}"
    )
    for note in answer["notes"]:
        console.print(f"  {note}")
    return 0
