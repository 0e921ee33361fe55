"""`oms keys issue|revoke|list`: API keys of channels and operators (shared/backbone/auth.py).

Keys live in the `auth` schema, which only the database administrator may write: the command connects with
OMS_ADMIN_DSN (default: the local stack's administrator, password OMS_PG_ADMIN_PASSWORD). A new key's token is
printed once; only its digest is stored."""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any

import asyncpg

from deploy.cli.output import CommandError, console, emit_json, errors, table
from deploy.cli.settings import CliSettings
from shared.backbone import auth

CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "keys", help="issue, revoke or list API keys", description="API keys of channels and operators."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{issue,revoke,list}")
    issue = verbs.add_parser(
        "issue",
        parents=[common],
        help="issue a key for a channel (or --operator)",
        description="A channel's key submits, reads and cancels that channel's orders; an operator's key reads and "
        "cancels any order and reads the services' views. The token is printed once: keep it.",
    )
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--channel", help="the sales channel the key acts for, e.g. webshop")
    who.add_argument("--operator", action="store_true", help="an operator's key")
    issue.add_argument("--label", default="", help="who holds it, for the listing")
    issue.add_argument("--rate", type=int, help="requests per second per instance (default: the services' setting)")
    issue.set_defaults(run=keys_issue)
    revoke = verbs.add_parser(
        "revoke", parents=[common], help="revoke a key", description="Refused by every instance within seconds."
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="the 16 hex digits after omsk_")
    revoke.set_defaults(run=keys_revoke)
    listing = verbs.add_parser("list", parents=[common], help="every key (never the secrets)", description="Keys.")
    listing.set_defaults(run=keys_list)


async def _admin(settings: CliSettings) -> asyncpg.Connection:
    if settings.admin_dsn:
        return await asyncpg.connect(settings.admin_dsn)
    local = settings.local
    return await asyncpg.connect(local.pg_dsn(), password=local.pg_admin_password)


async def _with_admin(settings: CliSettings, action: Any) -> Any:
    conn = await _admin(settings)
    try:
        return await action(conn)
    finally:
        await conn.close()


def keys_issue(args: argparse.Namespace) -> int:
    if args.channel is not None and not CHANNEL.match(args.channel):
        raise CommandError(f"{args.channel!r} is not a channel name (lower case letters, digits, - and _)")
    if args.rate is not None and args.rate < 1:
        raise CommandError("--rate must be at least 1")
    role: auth.Role = "operator" if args.operator else "channel"
    key = asyncio.run(
        _with_admin(args.settings, lambda conn: auth.issue(conn, role, args.channel, args.label, args.rate))
    )
    if args.json:
        emit_json({"key_id": key.key_id, "role": role, "channel": args.channel, "token": key.token})
    else:
        console.print(key.token)
        errors.print(f"issued {role} key {key.key_id}" + (f" for channel {args.channel}" if args.channel else ""))
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    if not asyncio.run(_with_admin(args.settings, lambda conn: auth.revoke(conn, args.key_id))):
        raise CommandError(f"no active key {args.key_id}")
    if args.json:
        emit_json({"key_id": args.key_id, "revoked": True})
    else:
        errors.print(f"revoked {args.key_id}")
    return 0


def keys_list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_with_admin(args.settings, auth.listing))
    if args.json:
        emit_json(rows)
        return 0
    columns = ("key_id", "role", "channel", "label", "rate_per_second", "created_at", "revoked_at")
    console.print(table("API keys", columns, ([r[c] for c in columns] for r in rows)))
    return 0
