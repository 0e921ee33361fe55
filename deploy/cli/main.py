"""The `oms` command: one entry point for what operators and developers do every day with the pipeline.

    oms stack up|down|status          the local stack, services, simulator and Prometheus
    oms order show ID | submit FILE   an order's status, timeline, shipments and messages; submit orders
    oms order change ID [--ship-to JSON] [--service-level L] [--line SKU=QTY[@PRICE]]...   change an order
    oms inventory show | receive      stock per warehouse and SKU; receive units at a warehouse
    oms dlq list | replay             dead letters, and replaying them after a fix
    oms topics                        topics, partitions, end offsets and consumer lag
    oms keys issue | revoke | list    API keys of channels and operators
    oms returns list | show | approve | reject   returns after delivery, and decisions on those under review
    oms holds list | show | release | cancel     orders on hold (risk), and operators' decisions on them
    oms replenishment                 what to order: open replenishment suggestions and reorder points
    oms dropship list                 dropship purchase orders still with their suppliers
    oms kpi [--since] [--by channel]  the KPIs operations live by, for the orders placed in a period

Every verb has --help and --json (machine-readable output on stdout; progress and notes go to stderr).
Addresses are the local stack's (OMS_PORT_OFFSET applies); OMS_<SERVICE>_URL and OMS_KAFKA_BOOTSTRAP point it
elsewhere (deploy/cli/settings.py).
"""

from __future__ import annotations

import argparse
import sys

import asyncpg
from aiokafka.errors import KafkaError

from deploy.cli import (
    cmd_dlq,
    cmd_dropship,
    cmd_holds,
    cmd_inventory,
    cmd_keys,
    cmd_kpi,
    cmd_order,
    cmd_replenishment,
    cmd_returns,
    cmd_stack,
    cmd_topics,
)
from deploy.cli.output import CommandError, errors
from deploy.cli.settings import CliSettings


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    root = argparse.ArgumentParser(
        prog="oms",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    commands = root.add_subparsers(
        dest="command",
        required=True,
        metavar="{stack,order,inventory,dlq,topics,keys,returns,holds,replenishment,dropship,kpi}",
    )
    for module in (
        cmd_stack,
        cmd_order,
        cmd_inventory,
        cmd_dlq,
        cmd_topics,
        cmd_keys,
        cmd_returns,
        cmd_holds,
        cmd_replenishment,
        cmd_dropship,
        cmd_kpi,
    ):
        module.register(commands, common)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.settings = CliSettings.from_env()
    try:
        status = args.run(args)
    except CommandError as exc:
        errors.print(f"[red]error:[/] {exc}")
        status = 1
    except (KafkaError, OSError, asyncpg.PostgresError) as exc:
        errors.print(f"[red]error:[/] {exc.__class__.__name__}: {exc} (is the stack up? `oms stack status`)")
        status = 1
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)
