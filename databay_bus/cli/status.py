"""``databay-bus status --queue PATH | --url URL``: what a running pipeline is doing now.

Two sources, one shape (:class:`databay_bus.status.PipelineStatus`):

* ``--queue PATH``: read, beside the running process and read-only, the status its planner
  records in the queue file every few seconds, with the queue's live counts;
* ``--url URL``: ask the running process's web interface (``/api/overview``, with a viewer's
  API token from ``--token`` or ``DATABAY_BUS_TOKEN``); ``PipelineStatus.from_dict`` reads
  its JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any

from databay_bus.cli._common import EXIT_OK, EXIT_USAGE, CommandFailure
from databay_bus.cli.queue import is_dsn, open_queue

__all__ = ["ORDER", "describe_status", "register"]

ORDER = 35


def register(commands: Any) -> None:
    """Add the ``status`` command."""
    status = commands.add_parser(
        "status",
        help="what a running pipeline is doing: links, last/next transfer, counts, failures",
        description="Show, for the pipeline that uses a queue file, each link's state, last "
        "and next transfer, counts and failing nodes, as its process recorded them (every "
        "5 s) and with the queue's live counts. Read-only: safe beside the running pipeline.",
    )
    source = status.add_mutually_exclusive_group(required=True)
    source.add_argument("--queue", metavar="PATH", help="the SqliteQueue file of the pipeline")
    source.add_argument(
        "--url",
        metavar="URL",
        help="the running process's web interface status, e.g. http://127.0.0.1:8080/api/overview",
    )
    status.add_argument(
        "--token", metavar="TOKEN", help="API token for --url (default: $DATABAY_BUS_TOKEN)"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)


def _from_url(args: argparse.Namespace) -> int:
    import os
    import urllib.error
    import urllib.request

    from databay_bus.status import PipelineStatus

    token = args.token or os.environ.get("DATABAY_BUS_TOKEN")
    try:
        request = urllib.request.Request(args.url, headers={"Accept": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=10) as reply:
            data = json.loads(reply.read().decode("utf-8"))
        status = PipelineStatus.from_dict(data, source=args.url)
    except urllib.error.HTTPError as exc:
        raise CommandFailure(f"{args.url}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CommandFailure(f"{args.url}: {type(exc).__name__}: {exc}") from None
    if args.json:
        print(json.dumps({"url": args.url, "pipelines": [status.as_dict()]}, indent=2))
        return EXIT_OK
    for line in describe_status(status, status.updated_at):
        print(line)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from databay_bus.status import PipelineStatus

    if args.url:
        return _from_url(args)
    if is_dsn(args.queue):
        raise CommandFailure(
            "--queue takes the SqliteQueue file a pipeline records its status in; for a "
            "PostgresQueue pipeline use --url with its web interface's /api/overview",
            EXIT_USAGE,
        )
    with open_queue(args.queue, read_only=True) as queue:
        texts = queue.recorded_status()
        stats = queue.stats()
    now = time.time()
    found = [
        PipelineStatus.from_dict(json.loads(text), source=f"queue {args.queue}").with_queue_counts(
            stats
        )
        for text in texts
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "queue": args.queue,
                    "pipelines": [
                        {**status.as_dict(), "running": not status.is_stale(now)}
                        for status in found
                    ],
                    "queue_stats": stats.as_dict(),
                },
                indent=2,
                default=str,
            )
        )
        return EXIT_OK
    if not found:
        print(
            f"queue {args.queue}: no pipeline has recorded its status here (none has run "
            f"since this databay_bus, or it stopped and a new one has not started); the "
            f"queue holds {stats.records} records: see 'databay-bus queue stats'"
        )
        return EXIT_OK
    for status in found:
        for line in describe_status(status, now):
            print(line)
    return EXIT_OK


def _clock(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "-"
    shown = datetime.fromtimestamp(epoch).strftime("%H:%M:%S")
    delta = epoch - now
    if abs(delta) < 1:
        return f"{shown} (now)"
    return f"{shown} (in {delta:.0f}s)" if delta > 0 else f"{shown} ({-delta:.0f}s ago)"


def describe_status(status: Any, now: float) -> list[str]:
    """Lines for one :class:`~databay_bus.status.PipelineStatus`: a header and a table."""
    age = max(0.0, now - status.updated_at)
    if status.is_stale(now):
        header = (
            f"pipeline ({status.process}): NOT RUNNING - its last status is {age:.0f}s old "
            f"({status.planner} was {status.state})"
        )
    else:
        header = f"pipeline ({status.process}): {status.planner} {status.state}, {age:.0f}s ago"
    rows = [
        (
            "link",
            "state",
            "last transfer",
            "next transfer",
            "transfers",
            "failures",
            "pending",
            "dead",
            "failing",
        )
    ]
    for link in status.links:
        rows.append(
            (
                link.id,
                link.state,
                _clock(link.last_transfer_at, now),
                _clock(link.next_transfer_at, now),
                str(link.transfers),
                str(link.failures),
                "-" if link.pending is None else str(link.pending),
                "-" if link.dead is None else str(link.dead),
                ", ".join(link.failing) or "-",
            )
        )
    table: list[str] = []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        table.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return [header, *table]
