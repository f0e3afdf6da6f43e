"""``databay-bus queue ACTION --queue PATH|DSN``: inspect and repair a queue.

``--queue`` is a SqliteQueue file (operated offline), or a PostgreSQL DSN
(``postgresql://...``, with ``--schema``) of a PostgresQueue, which may be operated while its
pipelines run. Actions: stats, dead, replay, drop, purge, export (see docs/cli.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from databay_bus.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandFailure,
    positive_float,
    positive_int,
    print_table,
)
from databay_bus.errors import DatabayBusError

__all__ = ["ORDER", "add_queue_arguments", "is_dsn", "open_queue", "register", "shown"]

ORDER = 40


def register(commands: Any) -> None:
    """Add the ``queue`` command and its actions."""
    queue = commands.add_parser(
        "queue",
        help="inspect and repair a queue (a SqliteQueue file, or a PostgresQueue DSN)",
        description="Operate a queue: stats, dead letters, replay, drop, purge, export. A "
        "SqliteQueue file is operated offline; a PostgresQueue (--queue postgresql://... "
        "--schema NAME) also while its pipelines run.",
    )
    actions = queue.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    def action(name: str, help_text: str, filters: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        add_queue_arguments(parser)
        if filters:
            parser.add_argument("--link", metavar="KEY", help="only this link (its queue key)")
            parser.add_argument("--outlet", metavar="NAME", help="only this outlet")
        return parser

    stats = action("stats", "deliveries per link and outlet: pending, retrying, delivered, dead")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=_stats)

    dead = action("dead", "list dead-lettered deliveries with their last error")
    dead.add_argument("--limit", type=positive_int, metavar="N", help="at most N")
    dead.add_argument("--json", action="store_true", help="print JSON lines")
    dead.set_defaults(handler=_dead)

    replay = action("replay", "make dead deliveries pending again, due now")
    replay.add_argument("--id", action="append", dest="ids", metavar="ID", help="a record id")
    replay.set_defaults(handler=_replay)

    drop = action("drop", "delete deliveries (dead ones unless --state says otherwise)")
    drop.add_argument("--id", action="append", dest="ids", metavar="ID", help="a record id")
    drop.add_argument(
        "--state",
        choices=("dead", "waiting", "all"),
        default="dead",
        help="which deliveries: dead (default), waiting (pending and retrying), all of those",
    )
    drop.add_argument(
        "--yes", action="store_true", help="needed to drop waiting deliveries (data loss)"
    )
    drop.set_defaults(handler=_drop)

    purge = action("purge", "delete delivered entries older than --older-than", filters=False)
    purge.add_argument(
        "--older-than",
        type=positive_float,
        default=0.001,
        metavar="S",
        help="age in seconds or a duration like '7d' (default: every delivered entry)",
    )
    purge.set_defaults(handler=_purge)

    export = action("export", "write pending or dead records as JSON lines or CSV")
    export.add_argument(
        "--what", choices=("pending", "dead"), default="pending", help="default: pending"
    )
    export.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl"
    )
    export.add_argument("--output", "-o", metavar="FILE", help="default: stdout")
    export.set_defaults(handler=_export)


def add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    """``--queue PATH|DSN`` and ``--schema`` (for a DSN)."""
    parser.add_argument(
        "--queue",
        required=True,
        metavar="PATH|DSN",
        help="a SqliteQueue file, or the DSN of a PostgresQueue (postgresql://...)",
    )
    parser.add_argument(
        "--schema",
        default="databay_bus",
        metavar="NAME",
        help="the PostgresQueue's schema (with a DSN; default: databay_bus)",
    )


def is_dsn(target: str) -> bool:
    """True when ``target`` is a PostgreSQL connection string rather than a file path."""
    first = target.split(maxsplit=1)[0] if target.strip() else ""
    return target.startswith(("postgresql://", "postgres://")) or first.startswith(
        ("host=", "hostaddr=", "dbname=", "user=", "port=", "service=")
    )


def shown(target: str) -> str:
    """``target`` as printed: a DSN with its password masked."""
    if not is_dsn(target):
        return target
    from databay_bus.queue.postgres import mask_dsn

    return mask_dsn(target)


@contextmanager
def open_queue(target: str, schema: str = "databay_bus", **options: Any) -> Iterator[Any]:
    """The queue ``target`` names (a file or a DSN), closed afterwards; CommandFailure if it
    cannot be opened (the DSN's password masked)."""
    if is_dsn(target):
        from databay_bus.queue import PostgresQueue

        opener: Any = lambda: PostgresQueue(target, schema=schema, max_connections=2, **options)  # noqa: E731
    else:
        if not Path(target).is_file():
            raise CommandFailure(f"no queue file at {target!r}")
        from databay_bus.queue import SqliteQueue

        opener = lambda: SqliteQueue(target, **options)  # noqa: E731
    try:
        queue = opener()
    except DatabayBusError as exc:
        raise CommandFailure(f"cannot open the queue: {exc}") from None
    try:
        yield queue
    finally:
        queue.close()


@contextmanager
def _open_queue(args: argparse.Namespace, **options: Any) -> Iterator[Any]:
    with open_queue(args.queue, args.schema, **options) as queue:
        yield queue


def _stats(args: argparse.Namespace) -> int:
    with _open_queue(args) as queue:
        stats = queue.stats()
    rows = [
        s
        for s in stats.outlets
        if (args.link is None or s.link == args.link)
        and (args.outlet is None or s.outlet == args.outlet)
    ]
    if args.json:
        data = stats.as_dict()
        data["outlets"] = [vars(s).copy() for s in rows]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"queue {shown(args.queue)}: {stats.records} records stored")
    header = ("link", "outlet", "pending", "retrying", "delivered", "dead", "oldest pending")
    table = [header]
    for s in rows:
        age = "-" if s.oldest_pending_age is None else f"{s.oldest_pending_age:.1f}s"
        table.append(
            (s.link, s.outlet, str(s.pending), str(s.retrying), str(s.delivered), str(s.dead), age)
        )
    print_table(table)
    return EXIT_OK


def _letter_dict(letter: Any) -> dict[str, Any]:
    record = letter.record
    return {
        "id": letter.id,
        "link": letter.link,
        "outlet": letter.outlet,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "failed_at": _iso(letter.failed_at),
        "payload": None if record is None else record.payload,
        "metadata": None if record is None else record.metadata,
    }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def _dead(args: argparse.Namespace) -> int:
    with _open_queue(args) as queue:
        letters = queue.dead_letters(link=args.link, outlet=args.outlet, limit=args.limit)
        rows = [_letter_dict(letter) for letter in letters]
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return EXIT_OK
    if not rows:
        print("no dead letters")
        return EXIT_OK
    for row in rows:
        payload = json.dumps(row["payload"], default=str)
        if len(payload) > 60:
            payload = payload[:57] + "..."
        print(
            f"{row['id']}  {row['link']} -> {row['outlet']}  attempts={row['attempts']}  "
            f"at {row['failed_at']}  {row['last_error']}  payload={payload}"
        )
    print(f"{len(rows)} dead letters")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    with _open_queue(args) as queue:
        try:
            count = queue.replay(link=args.link, outlet=args.outlet, ids=args.ids)
        except DatabayBusError as exc:
            raise CommandFailure(str(exc)) from None
    print(f"replayed {count} dead deliveries; they are due at the next transfer")
    return EXIT_OK


def _drop(args: argparse.Namespace) -> int:
    from databay_bus.queue import DeliveryState

    states = {
        "dead": (DeliveryState.DEAD,),
        "waiting": (DeliveryState.PENDING, DeliveryState.FAILED),
        "all": (DeliveryState.DEAD, DeliveryState.PENDING, DeliveryState.FAILED),
    }[args.state]
    if args.state != "dead" and not args.yes:
        raise CommandFailure(
            "dropping waiting deliveries loses records that were never delivered; "
            "add --yes if you mean it",
            EXIT_USAGE,
        )
    with _open_queue(args) as queue:
        try:
            count = queue.drop(link=args.link, outlet=args.outlet, ids=args.ids, states=states)
        except DatabayBusError as exc:
            raise CommandFailure(str(exc)) from None
    print(f"dropped {count} deliveries")
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    with _open_queue(args, retention=args.older_than) as queue:
        count = queue.purge()
    print(f"purged {count} delivered entries older than {args.older_than:g}s")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    if args.what == "dead":
        with _open_queue(args) as queue:
            letters = queue.dead_letters(link=args.link, outlet=args.outlet)
            rows = [_letter_dict(letter) for letter in letters]
    else:
        rows = _pending_rows(args)
    out: TextIO = sys.stdout
    if args.output:
        out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        _write_rows(rows, args.format, out)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"exported {len(rows)} {args.what} records to {args.output}")
    return EXIT_OK


def _pending_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every waiting (pending or retrying) delivery, listed without claiming any."""
    with _open_queue(args) as queue:
        return [
            {
                "id": entry.id,
                "link": entry.link,
                "outlet": entry.outlet,
                "payload": None if entry.record is None else entry.record.payload,
                "metadata": None if entry.record is None else entry.record.metadata,
            }
            for entry in queue.waiting_records(link=args.link, outlet=args.outlet)
        ]


def _write_rows(rows: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, default=str) + "\n")
        return
    columns = ["id", "link", "outlet", "attempts", "last_error", "failed_at", "payload", "metadata"]
    present = [c for c in columns if any(c in row for row in rows)] or columns[:3]
    writer = csv.writer(out)
    writer.writerow(present)
    for row in rows:
        cells = []
        for column in present:
            value = row.get(column)
            if isinstance(value, (dict, list)):
                value = json.dumps(value, default=str)
            cells.append("" if value is None else value)
        writer.writerow(cells)
