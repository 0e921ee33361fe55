"""`oms stack up|down|status`: Kafka, PostgreSQL and the SMTP sink (deploy.local.stack), the services and
the simulator (deploy.local.processes), and a Prometheus scraping them (deploy.prometheus.local)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
from typing import Any

from deploy.cli.output import CommandError, console, emit_json, errors, table
from deploy.local import processes, stack
from deploy.local.settings import LocalStack
from deploy.prometheus import local as prometheus


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "stack",
        help="start, stop or show the local stack and services",
        description="The local pipeline: Kafka, PostgreSQL, the SMTP sink, the services, the simulator, Prometheus.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{up,down,status}")
    up = verbs.add_parser(
        "up",
        parents=[common],
        help="start whatever is not running",
        description="Start the infrastructure, then the services, the warehouse/carrier simulator and Prometheus "
        "(each only if not running already), and show the status.",
    )
    up.add_argument("--no-services", action="store_true", help="infrastructure only (Kafka, PostgreSQL, SMTP)")
    up.add_argument("--no-simulator", action="store_true", help="do not start the warehouse/carrier simulator")
    up.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    up.set_defaults(run=stack_up)
    down = verbs.add_parser(
        "down", parents=[common], help="stop everything", description="Stop Prometheus, the services and the stack."
    )
    down.add_argument("--purge", action="store_true", help="also delete Kafka's and PostgreSQL's data")
    down.set_defaults(run=stack_down)
    status = verbs.add_parser(
        "status", parents=[common], help="show what runs", description="Each component: running or not, pid, address."
    )
    status.set_defaults(run=stack_status)


def _quietly() -> contextlib.AbstractContextManager[Any]:
    # The stack scripts narrate on stdout; keep stdout for the command's own output (--json).
    return contextlib.redirect_stdout(sys.stderr)


def stack_up(args: argparse.Namespace) -> int:
    local = args.settings.local
    with _quietly(), errors.status("starting Kafka, PostgreSQL and the SMTP sink"):
        try:
            asyncio.run(stack.up(local))
        except stack.StackError as exc:
            raise CommandError(str(exc)) from exc
    if not args.no_services:
        wanted = [p for p in processes.everything(local) if not (args.no_simulator and p.name == "simulator")]
        with errors.status("starting the services"):
            processes.start_all(wanted)
    if not args.no_prometheus:
        if shutil.which("prometheus") is None:
            errors.print("prometheus is not installed (deploy/local/bootstrap.sh installs it); not started")
        else:
            with errors.status("starting Prometheus"):
                prometheus.of_stack(local).start()
    return stack_status(args)


def stack_down(args: argparse.Namespace) -> int:
    local = args.settings.local
    with errors.status("stopping"):
        prometheus.of_stack(local).stop()
        for process in reversed(processes.everything(local)):
            process.stop()
        with _quietly():
            stack.down(local, purge=args.purge)
    return stack_status(args)


def components(local: LocalStack) -> list[dict[str, Any]]:
    rows = [
        {"name": name, "state": "running" if pid else "stopped", "pid": pid, "address": address}
        for name, pid, address in stack.components(local)
    ]
    for process in processes.everything(local):
        pid = process.pid()
        state = "ready" if process.ready() else ("running" if pid else "stopped")
        address = f"http://{local.host}:{process.http_port}" if process.http_port else ""
        rows.append({"name": process.name, "state": state, "pid": pid, "address": address})
    server = prometheus.of_stack(local)
    pid = server.pid()
    rows.append(
        {
            "name": "prometheus",
            "state": "ready" if pid and server.ready() else ("running" if pid else "stopped"),
            "pid": pid,
            "address": server.url,
        }
    )
    return rows


def stack_status(args: argparse.Namespace) -> int:
    rows = components(args.settings.local)
    if args.json:
        emit_json(rows)
    else:
        console.print(
            table(
                None,
                ["component", "state", "pid", "address"],
                [[r["name"], r["state"], r["pid"] or "-", r["address"]] for r in rows],
            )
        )
    return 0
