"""`oms dlq list` and `oms dlq replay`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from deploy.cli import dlq
from deploy.cli.output import CommandError, console, emit_json, errors, progress, table
from deploy.local.settings import LocalStack


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "dlq", help="list or replay dead letters", description="Dead letters: records a service could not process."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{list,replay}")
    listing = verbs.add_parser(
        "list",
        parents=[common],
        help="dead letters not replayed yet",
        description="Dead letters of every service with reason and origin (the record's content is not shown), "
        "from the dead-letter topics and the services' dead_letters tables (records too large for the topic). "
        "Ids look like oms.dead-letter.capture:0:12 or capture.dead_letters:3.",
    )
    listing.add_argument("--topic", help="only those from this origin topic (or in this dead-letter topic)")
    listing.add_argument("--all", action="store_true", help="include dead letters already replayed")
    listing.set_defaults(run=dlq_list)
    replay = verbs.add_parser(
        "replay",
        parents=[common],
        help="send dead letters back to their origin topic",
        description="After fixing the cause, republish dead letters to the topic they came from, marked with an "
        "oms.replay.of header. Event ids are kept, so a record already processed is skipped. A replay that fails "
        "again returns to the dead-letter topic (list it and replay it after the next fix).",
    )
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead letters to replay")
    replay.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    replay.add_argument("--topic", help="with --all: only those from this origin topic (or dead-letter topic)")
    replay.add_argument("--dry-run", action="store_true", help="show what would be replayed, send nothing")
    replay.set_defaults(run=dlq_replay)


def _read(local: LocalStack, topic: str | None, quiet: bool) -> dlq.Listing:
    with progress(quiet) as bar:
        task = bar.add_task("reading dead-letter topics", total=None)
        return asyncio.run(dlq.listing(local, topic, lambda done, total: bar.update(task, completed=done, total=total)))


def _show(letters: list[dlq.DeadLetter], replayed: set[str], title: str) -> None:
    rows = [d.summary(d.id in replayed) for d in letters]
    console.print(
        table(
            title,
            ["id", "origin", "failed at", "reason", "replay of", "replayed"],
            [
                [
                    r["id"],
                    r["origin"],
                    r["failed_at"],
                    (r["reason"] or "")[:160],
                    r["replay_of"],
                    "yes" if r["replayed"] else "",
                ]
                for r in rows
            ],
        )
    )


def dlq_list(args: argparse.Namespace) -> int:
    found = _read(args.settings.local, args.topic, args.json)
    letters = found.letters if args.all else found.pending()
    if args.json:
        emit_json([d.summary(d.id in found.replayed) for d in letters])
    else:
        _show(letters, found.replayed, f"{len(letters)} dead letters" + ("" if args.all else " not replayed"))
    return 0


def dlq_replay(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all):
        raise CommandError("name the dead letters to replay (IDs) or give --all")
    if args.topic and not args.all:
        raise CommandError("--topic selects with --all; with IDs, name exactly the ones to replay")
    found = _read(args.settings.local, args.topic if args.all else None, args.json)
    try:
        chosen = found.pending() if args.all else [found.find(i) for i in args.ids]
    except LookupError as exc:
        raise CommandError(str(exc)) from exc
    unreadable = [d for d in chosen if d.unreadable]
    if unreadable and not args.all:
        raise CommandError(
            f"{unreadable[0].id} cannot be replayed: the Kafka client could not read the record, only where it is "
            f"({unreadable[0].origin}); copy it with a tool that reads raw records before the topic's retention ends"
        )
    for letter in unreadable:
        errors.print(f"{letter.id} skipped: the record could not be read (origin {letter.origin})")
    chosen = [d for d in chosen if not d.unreadable]
    for letter in chosen:
        if letter.id in found.replayed:
            errors.print(f"{letter.id} was replayed before; sending it again (its event id makes a repeat harmless)")
    if args.dry_run:
        if args.json:
            emit_json([d.summary(d.id in found.replayed) for d in chosen])
        else:
            _show(chosen, found.replayed, f"would replay {len(chosen)}")
        return 0
    with progress(args.json or len(chosen) < 2) as bar:
        task = bar.add_task("replaying", total=len(chosen))
        done = asyncio.run(dlq.replay(args.settings.local, chosen, lambda _: bar.advance(task)))
    if args.json:
        emit_json(done)
    else:
        console.print(
            table(f"replayed {len(done)}", ["dead letter", "replayed to"], [[d["id"], d["replayed_to"]] for d in done])
        )
    return 0
