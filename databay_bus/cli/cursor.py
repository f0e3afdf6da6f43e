"""``databay-bus cursor ACTION --queue PATH|DSN``: read, set or reset inlet cursors in a queue.

Actions: list, set, reset (see docs/cli.md and docs/cursors.md). ``list`` opens the queue
read-only, so it works beside a running pipeline; ``set`` and ``reset`` open it for writing,
which a running pipeline's lock refuses: a cursor is never changed under a running link. For a
PostgresQueue (``--queue postgresql://... --schema NAME``) set and reset are refused while
its node registry shows a live process.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from databay_bus.cli._common import EXIT_OK, CommandFailure, print_table
from databay_bus.cli.queue import add_queue_arguments, is_dsn, open_queue
from databay_bus.errors import DatabayBusError, QueueLockedError

__all__ = ["ORDER", "register"]

ORDER = 45


def register(commands: Any) -> None:
    """Add the ``cursor`` command and its actions."""
    cursor = commands.add_parser(
        "cursor",
        help="read, set or reset inlet cursors stored in a queue (file or PostgreSQL DSN)",
        description="Inlet cursors (update.cursor) stored in a queue, per link and "
        "inlet. set and reset refuse while a pipeline holds the queue.",
    )
    actions = cursor.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    def action(name: str, help_text: str, one: bool) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        add_queue_arguments(parser)
        parser.add_argument(
            "--link", required=one, metavar="KEY", help="the link's queue key (its tags joined)"
        )
        parser.add_argument("--inlet", required=one, metavar="NAME", help="the inlet's name")
        return parser

    listing = action("list", "print the committed cursors", one=False)
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    listing.set_defaults(handler=_list)

    setting = action("set", "store a cursor (a JSON value) for one inlet", one=True)
    setting.add_argument("value", metavar="JSON", help="the cursor, as JSON: 42, '\"2026-12-06\"'")
    setting.set_defaults(handler=_set)

    reset = action("reset", "forget one inlet's cursor: its next pull starts from None", one=True)
    reset.set_defaults(handler=_reset)


@contextmanager
def _open(args: argparse.Namespace, read_only: bool = False) -> Iterator[Any]:
    if is_dsn(args.queue):  # a PostgresQueue: refuse changes while its node registry is alive
        with open_queue(args.queue, args.schema) as queue:
            alive = [] if read_only else [node.node for node in queue.nodes() if node.alive]
            if alive:
                raise CommandFailure(
                    f"the queue is in use: {len(alive)} process(es) run pipelines on it "
                    f"({', '.join(alive[:3])}); stop them first"
                )
            yield queue
        return
    path = args.queue
    if not Path(path).is_file():
        raise CommandFailure(f"no queue file at {path!r}")
    from databay_bus.queue import SqliteQueue

    try:
        queue = SqliteQueue(path, read_only=read_only)
    except QueueLockedError as exc:
        raise CommandFailure(
            f"the queue {path!r} is in use (a pipeline runs with it); stop it first: {exc}"
        ) from None
    except DatabayBusError as exc:
        raise CommandFailure(f"cannot open the queue {path!r}: {exc}") from None
    try:
        yield queue
    finally:
        queue.close()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def _list(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as queue:
        found = queue.cursors(args.link)
    rows = [
        {
            "link": link,
            "inlet": inlet,
            "value": c.value,
            "version": c.version,
            "updated_at": _iso(c.updated_at),
        }
        for (link, inlet), c in found.items()
        if args.inlet is None or inlet == args.inlet
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return EXIT_OK
    if not rows:
        print("no cursors")
        return EXIT_OK
    table = [("link", "inlet", "cursor", "version", "updated")]
    table += [
        (r["link"], r["inlet"], json.dumps(r["value"]), str(r["version"]), r["updated_at"])
        for r in rows
    ]
    print_table(table)
    return EXIT_OK


def _set(args: argparse.Namespace) -> int:
    try:
        value = json.loads(args.value)
    except json.JSONDecodeError as exc:
        raise CommandFailure(f"the cursor must be JSON (quote strings: '\"x\"'): {exc}") from None
    with _open(args) as queue:
        try:
            queue.set_cursor(args.link, args.inlet, value)
        except DatabayBusError as exc:
            raise CommandFailure(str(exc)) from None
    print(f"cursor of {args.link}/{args.inlet} set to {json.dumps(value)}")
    return EXIT_OK


def _reset(args: argparse.Namespace) -> int:
    with _open(args) as queue:
        existed = queue.reset_cursor(args.link, args.inlet)
    print(
        f"cursor of {args.link}/{args.inlet} reset"
        if existed
        else f"no cursor for {args.link}/{args.inlet}; nothing to reset"
    )
    return EXIT_OK
