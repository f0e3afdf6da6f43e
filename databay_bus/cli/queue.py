"""``databay-bus queue ACTION --queue PATH|DSN``: inspect and repair a queue.

``--queue`` is a SqliteQueue file, or a PostgreSQL DSN (``postgresql://...``, with
``--schema``) of a PostgresQueue, which may be operated while its pipelines run. On a
SqliteQueue file, stats, dead, export and check only read: they open it read-only, so they
work beside the running pipeline and never change a row; replay, drop and purge change the
file, so they need the pipeline stopped (see docs/cli.md).
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
        description="Operate a queue: stats, dead letters, export and check read it (a "
        "SqliteQueue file read-only, beside its running pipeline too); replay, drop and purge "
        "change it (a SqliteQueue file with its pipeline stopped; a PostgresQueue "
        "(--queue postgresql://... --schema NAME) also while its pipelines run).",
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

    def codec_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--codec",
            choices=("json", "pickle"),
            help="decode records stored with this codec (JSON ones always are); pickle runs "
            "code from the file: only for a file you trust",
        )

    stats = action("stats", "deliveries per link and outlet: pending, retrying, delivered, dead")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=_stats)

    dead = action("dead", "list dead-lettered deliveries with their last error")
    dead.add_argument("--limit", type=positive_int, metavar="N", help="at most N")
    dead.add_argument("--json", action="store_true", help="print JSON lines")
    codec_option(dead)
    dead.set_defaults(handler=_dead)

    check = action("check", "check the whole file for damage (PRAGMA integrity_check)", False)
    check.set_defaults(handler=_check)

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

    export = action(
        "export", "write pending, dead or delivered (not yet purged) records as JSON lines or CSV"
    )
    export.add_argument(
        "--what",
        choices=("pending", "dead", "delivered"),
        default="pending",
        help="default: pending",
    )
    export.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl"
    )
    export.add_argument("--output", "-o", metavar="FILE", help="default: stdout")
    codec_option(export)
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def open_queue(
    target: str, schema: str = "databay_bus", read_only: bool = False, **options: Any
) -> Iterator[Any]:
    """The queue ``target`` names (a file or a DSN), closed afterwards. Every failure, to
    open it or later, is a one-line CommandFailure (exit 1; the DSN's password masked).

    ``read_only``: a SqliteQueue file is opened read-only (inspection beside its running
    pipeline); a PostgresQueue is shared by design and opened as it is. Neither is ever
    created here: a missing file or a schema without a queue is an error.
    """
    if is_dsn(target):
        from databay_bus.queue import PostgresQueue

        opener: Any = lambda: PostgresQueue(  # noqa: E731 - never creates a schema
            target, schema=schema, max_connections=2, create_schema=False, **options
        )
    else:
        try:
            exists = Path(target).exists()
        except OSError as exc:
            raise CommandFailure(
                f"cannot open the queue {target!r}: {exc.strerror or exc}"
            ) from None
        if not exists:
            raise CommandFailure(f"no queue file at {target!r}")
        from databay_bus.queue import SqliteQueue

        opener = lambda: SqliteQueue(target, read_only=read_only, **options)  # noqa: E731
    try:
        queue = opener()
    except (DatabayBusError, OSError) as exc:
        raise CommandFailure(f"cannot open the queue: {_one_line(str(exc))}") from None
    try:
        yield queue
    except DatabayBusError as exc:
        raise CommandFailure(_one_line(str(exc))) from None
    finally:
        queue.close()


@contextmanager
def _open_queue(args: argparse.Namespace, **options: Any) -> Iterator[Any]:
    with open_queue(args.queue, args.schema, **options) as queue:
        yield queue


def _reader(args: argparse.Namespace) -> Any:
    """The queue of an inspecting action: read-only, with ``--codec`` if given."""
    options: dict[str, Any] = {}
    if getattr(args, "codec", None) == "pickle":
        from databay_bus.records.codecs import PickleCodec

        options["codec"] = PickleCodec()
    return _open_queue(args, read_only=True, **options)


def _require_decoded(rows: list[dict[str, Any]]) -> None:
    """Exit 1 naming the codec when a listed record could not be decoded; else drop the
    ``decode_error`` key."""
    problems = [row["decode_error"] for row in rows if row.get("decode_error")]
    if problems:
        raise CommandFailure(
            f"{len(problems)} record(s) cannot be decoded: {_one_line(problems[0])}; pass "
            f"--codec with the codec they were stored with (--codec pickle runs code from "
            f"the file: only for a file you trust)"
        )
    for row in rows:
        row.pop("decode_error", None)


def _stats(args: argparse.Namespace) -> int:
    with _reader(args) as queue:
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


def _entry_dict(entry: Any, **fields: Any) -> dict[str, Any]:
    """One inspected queue entry as a JSON-ready dict: its id, link and outlet, ``fields``,
    then the record (or the decode error that kept it from being read)."""
    record = entry.record
    return {
        "id": entry.id,
        "link": entry.link,
        "outlet": entry.outlet,
        **fields,
        "payload": None if record is None else record.payload,
        "metadata": None if record is None else record.metadata,
        "decode_error": entry.decode_error,
    }


def _letter_dict(letter: Any) -> dict[str, Any]:
    return _entry_dict(
        letter,
        attempts=letter.attempts,
        last_error=letter.last_error,
        failed_at=_iso(letter.failed_at),
    )


def _waiting_dict(entry: Any) -> dict[str, Any]:
    return _entry_dict(
        entry,
        state="retrying" if entry.attempts else "pending",
        attempts=entry.attempts,
        last_error=entry.last_error,
        due_at=_iso(entry.due_at),
    )


def _delivered_dict(entry: Any) -> dict[str, Any]:
    return _entry_dict(
        entry,
        state="delivered",
        attempts=entry.attempts,
        delivered_at=_iso(entry.delivered_at),
    )


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def _dead(args: argparse.Namespace) -> int:
    with _reader(args) as queue:
        letters = queue.dead_letters(link=args.link, outlet=args.outlet, limit=args.limit)
        rows = [_letter_dict(letter) for letter in letters]
    _require_decoded(rows)
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


def _check(args: argparse.Namespace) -> int:
    with _reader(args) as queue:
        check = getattr(queue, "integrity_check", None)
        if check is None:
            raise CommandFailure(f"{shown(args.queue)}: this queue has no integrity check")
        result = check()
    if result != "ok":
        raise CommandFailure(f"{shown(args.queue)} is damaged: {_one_line(result)}")
    print(f"{shown(args.queue)}: ok")
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
    with _reader(args) as queue:
        if args.what == "dead":
            found = queue.dead_letters(link=args.link, outlet=args.outlet)
            rows = [_letter_dict(letter) for letter in found]
        elif args.what == "delivered":  # kept until the queue's retention purges them
            delivered = queue.delivered_records(link=args.link, outlet=args.outlet)
            rows = [_delivered_dict(entry) for entry in delivered]
        else:  # listed without due(): nothing is handed out, claimed or dead-lettered
            waiting = queue.waiting_records(link=args.link, outlet=args.outlet)
            rows = [_waiting_dict(entry) for entry in waiting]
    _require_decoded(rows)
    if not args.output:
        _write_rows(rows, args.format, sys.stdout)
        return EXIT_OK
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            _write_rows(rows, args.format, out)
    except OSError as exc:
        raise CommandFailure(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    print(f"exported {len(rows)} {args.what} records to {args.output}")
    return EXIT_OK


def _write_rows(rows: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, default=str) + "\n")
        return
    columns = [
        "id",
        "link",
        "outlet",
        "state",
        "attempts",
        "last_error",
        "due_at",
        "failed_at",
        "delivered_at",
        "payload",
        "metadata",
    ]
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
