"""The ``databay-bus`` command (also ``python -m databay_bus``): run, validate, demo, queue.

Exit codes: 0 success (also after a graceful stop on SIGINT/SIGTERM), 1 a runtime failure
(the pipeline failed, a queue operation failed), 2 a usage error or an invalid pipeline file.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from databay_bus import __version__
from databay_bus.errors import ConfigError, DatabayBusError

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_LOGGER = logging.getLogger(__name__)


class _Failure(Exception):
    """A command failed; the message is printed and the process exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


# -- argument parsing ----------------------------------------------------------------------


def _positive_float(text: str) -> float:
    from databay_bus.config import parse_duration

    try:
        return parse_duration(float(text) if _is_number(text) else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _level(text: str) -> int:
    name = text.upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise argparse.ArgumentTypeError(
            f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {text!r}"
        )
    return int(getattr(logging, name))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``databay-bus``."""
    parser = argparse.ArgumentParser(
        prog="databay-bus",
        description="Run and operate databay_bus pipelines declared in TOML or JSON files.",
        epilog="Docs: docs/cli.md (commands), docs/config.md (the pipeline file format).",
    )
    parser.add_argument("--version", action="version", version=f"databay_bus {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run",
        help="run a pipeline until SIGINT/SIGTERM (or a bound)",
        description="Load PIPELINE, start its planner and run until SIGINT or SIGTERM, "
        "--duration or --transfers; then shut down gracefully and exit 0.",
    )
    run.add_argument("pipeline", metavar="PIPELINE", help="the pipeline file (.toml or .json)")
    run.add_argument(
        "--duration", type=_positive_float, metavar="S", help="stop after S seconds ('90', '5m')"
    )
    run.add_argument(
        "--transfers",
        type=_positive_int,
        metavar="N",
        help="stop once every link has completed at least N transfers",
    )
    run.add_argument(
        "--status-interval",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="log one status line per link every S seconds at INFO (default 10)",
    )
    run.add_argument(
        "--log-level",
        type=_level,
        metavar="LEVEL",
        help="level of the databay_bus logger (default: the file's log_level, else INFO)",
    )
    run.set_defaults(handler=_cmd_run)

    validate = commands.add_parser(
        "validate",
        help="check a pipeline file and print what it resolves to",
        description="Load PIPELINE without starting anything (queues are not opened) and print "
        "the resolved pipeline, or every problem with its key path.",
    )
    validate.add_argument("pipeline", metavar="PIPELINE", help="the pipeline file")
    validate.add_argument("-q", "--quiet", action="store_true", help="print nothing when valid")
    validate.set_defaults(handler=_cmd_validate)

    demo = commands.add_parser(
        "demo",
        help="run a bundled pipeline: local HTTP source -> SQLite queue -> CSV and stdout",
        description="Start a small JSON HTTP server on 127.0.0.1, and a pipeline that pulls "
        "it with HttpInlet through a SqliteQueue into a CSV file and PrintOutlet; stops "
        "by itself and prints a summary.",
    )
    demo.add_argument(
        "--dir", metavar="DIR", help="where to write the files (default: a new temp dir)"
    )
    demo.add_argument(
        "--transfers", type=_positive_int, default=8, metavar="N", help="transfers (default 8)"
    )
    demo.add_argument(
        "--interval",
        type=_positive_float,
        default=0.5,
        metavar="S",
        help="seconds between transfers (default 0.5)",
    )
    demo.set_defaults(handler=_cmd_demo)

    _add_queue_commands(commands)
    return parser


def _add_queue_commands(commands: Any) -> None:
    queue = commands.add_parser(
        "queue",
        help="inspect and repair a SqliteQueue file offline",
        description="Operate a SqliteQueue file: stats, dead letters, replay, drop, purge, export.",
    )
    actions = queue.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    def action(name: str, help_text: str, filters: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        parser.add_argument("--queue", required=True, metavar="PATH", help="the SqliteQueue file")
        if filters:
            parser.add_argument("--link", metavar="KEY", help="only this link (its queue key)")
            parser.add_argument("--outlet", metavar="NAME", help="only this outlet")
        return parser

    stats = action("stats", "deliveries per link and outlet: pending, retrying, delivered, dead")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=_cmd_queue_stats)

    dead = action("dead", "list dead-lettered deliveries with their last error")
    dead.add_argument("--limit", type=_positive_int, metavar="N", help="at most N")
    dead.add_argument("--json", action="store_true", help="print JSON lines")
    dead.set_defaults(handler=_cmd_queue_dead)

    replay = action("replay", "make dead deliveries pending again, due now")
    replay.add_argument("--id", action="append", dest="ids", metavar="ID", help="a record id")
    replay.set_defaults(handler=_cmd_queue_replay)

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
    drop.set_defaults(handler=_cmd_queue_drop)

    purge = action("purge", "delete delivered entries older than --older-than", filters=False)
    purge.add_argument(
        "--older-than",
        type=_positive_float,
        default=0.001,
        metavar="S",
        help="age in seconds or a duration like '7d' (default: every delivered entry)",
    )
    purge.set_defaults(handler=_cmd_queue_purge)

    export = action("export", "write pending or dead records as JSON lines or CSV")
    export.add_argument(
        "--what", choices=("pending", "dead"), default="pending", help="default: pending"
    )
    export.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl"
    )
    export.add_argument("--output", "-o", metavar="FILE", help="default: stdout")
    export.set_defaults(handler=_cmd_queue_export)


# -- run / validate --------------------------------------------------------------------------


def _load(path: str, dry_run: bool = False) -> Any:
    from databay_bus.config import load

    try:
        return load(path, dry_run=dry_run)
    except ConfigError as exc:
        raise _Failure(f"invalid pipeline: {exc}", EXIT_USAGE) from None


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on the first SIGINT/SIGTERM; a second one restores the defaults."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        _LOGGER.warning(
            "%s received: shutting down gracefully (send it again to stop at once)",
            signal.Signals(signum).name,
        )
        stop.set()
        for sig, old in previous.items():
            signal.signal(sig, old)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _cmd_run(args: argparse.Namespace) -> int:
    pipeline = _load(args.pipeline)
    level = args.log_level or pipeline.log_level or logging.INFO
    pipeline.configure_logging(level)
    stop = threading.Event()
    _LOGGER.info("running %s (%d links)", args.pipeline, len(pipeline.links))
    with _stop_on_signals(stop):
        reason = pipeline.run(
            duration=args.duration,
            transfers=args.transfers,
            stop=stop,
            status_interval=args.status_interval,
        )
    lines = _final_status(pipeline)
    for line in lines:
        print(line)
    if reason == "failed":
        raise _Failure("the pipeline stopped after an error (see the log above)")
    print(f"stopped ({_REASONS[reason]})")
    return EXIT_OK


_REASONS = {
    "stopped": "signal received",
    "duration": "--duration reached",
    "transfers": "--transfers reached",
}


def _final_status(pipeline: Any) -> list[str]:
    from databay_bus.config.pipeline import status_line

    metrics = pipeline.final_metrics or {"links": []}
    return [status_line(entry) for entry in metrics["links"]]


def _cmd_validate(args: argparse.Namespace) -> int:
    pipeline = _load(args.pipeline, dry_run=True)
    try:
        if not args.quiet:
            print(pipeline.describe())
            print("valid")
    finally:
        pipeline.close()
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from databay_bus._demo import run_demo

    code: int = run_demo(args.dir, args.transfers, args.interval)
    return code


# -- queue -----------------------------------------------------------------------------------


@contextmanager
def _open_queue(path: str, **options: Any) -> Iterator[Any]:
    if not Path(path).is_file():
        raise _Failure(f"no queue file at {path!r}")
    from databay_bus.queue import SqliteQueue

    try:
        queue = SqliteQueue(path, **options)
    except DatabayBusError as exc:
        raise _Failure(f"cannot open the queue {path!r}: {exc}") from None
    try:
        yield queue
    finally:
        queue.close()


def _cmd_queue_stats(args: argparse.Namespace) -> int:
    with _open_queue(args.queue) as queue:
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
    print(f"queue {args.queue}: {stats.records} records stored")
    header = ("link", "outlet", "pending", "retrying", "delivered", "dead", "oldest pending")
    table = [header]
    for s in rows:
        age = "-" if s.oldest_pending_age is None else f"{s.oldest_pending_age:.1f}s"
        table.append(
            (s.link, s.outlet, str(s.pending), str(s.retrying), str(s.delivered), str(s.dead), age)
        )
    _print_table(table)
    return EXIT_OK


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


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


def _cmd_queue_dead(args: argparse.Namespace) -> int:
    with _open_queue(args.queue) as queue:
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


def _cmd_queue_replay(args: argparse.Namespace) -> int:
    with _open_queue(args.queue) as queue:
        try:
            count = queue.replay(link=args.link, outlet=args.outlet, ids=args.ids)
        except DatabayBusError as exc:
            raise _Failure(str(exc)) from None
    print(f"replayed {count} dead deliveries; they are due at the next transfer")
    return EXIT_OK


def _cmd_queue_drop(args: argparse.Namespace) -> int:
    from databay_bus.queue import DeliveryState

    states = {
        "dead": (DeliveryState.DEAD,),
        "waiting": (DeliveryState.PENDING, DeliveryState.FAILED),
        "all": (DeliveryState.DEAD, DeliveryState.PENDING, DeliveryState.FAILED),
    }[args.state]
    if args.state != "dead" and not args.yes:
        raise _Failure(
            "dropping waiting deliveries loses records that were never delivered; "
            "add --yes if you mean it",
            EXIT_USAGE,
        )
    with _open_queue(args.queue) as queue:
        try:
            count = queue.drop(link=args.link, outlet=args.outlet, ids=args.ids, states=states)
        except DatabayBusError as exc:
            raise _Failure(str(exc)) from None
    print(f"dropped {count} deliveries")
    return EXIT_OK


def _cmd_queue_purge(args: argparse.Namespace) -> int:
    with _open_queue(args.queue, retention=args.older_than) as queue:
        count = queue.purge()
    print(f"purged {count} delivered entries older than {args.older_than:g}s")
    return EXIT_OK


def _cmd_queue_export(args: argparse.Namespace) -> int:
    if args.what == "dead":
        with _open_queue(args.queue) as queue:
            letters = queue.dead_letters(link=args.link, outlet=args.outlet)
            rows = [_letter_dict(letter) for letter in letters]
    else:
        rows = _pending_rows(args.queue, args.link, args.outlet)
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


class _FarFuture:
    """A clock a century ahead: every waiting delivery (retrying ones too) is due by it."""

    def time(self) -> float:
        return 4.1e9

    def monotonic(self) -> float:
        return 4.1e9


def _pending_rows(path: str, link: str | None, outlet: str | None) -> list[dict[str, Any]]:
    """Every waiting (pending or retrying) delivery, read through ``due()`` on a far clock."""
    rows: list[dict[str, Any]] = []
    with _open_queue(path, clock=_FarFuture()) as queue:
        for stats in queue.stats().outlets:
            if (link is not None and stats.link != link) or (
                outlet is not None and stats.outlet != outlet
            ):
                continue
            if not stats.pending:
                continue
            for record in queue.due(stats.link, stats.outlet, stats.pending):
                rows.append(
                    {
                        "id": record.id,
                        "link": stats.link,
                        "outlet": stats.outlet,
                        "payload": record.payload,
                        "metadata": record.metadata,
                    }
                )
    return rows


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


# -- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except _Failure as exc:
        print(f"databay-bus {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"databay-bus {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()
    return code
