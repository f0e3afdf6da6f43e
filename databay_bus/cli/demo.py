"""``databay-bus demo``: a bundled pipeline, local HTTP source -> SQLite queue -> CSV and stdout."""

from __future__ import annotations

import argparse
from typing import Any

from databay_bus.cli._common import CommandFailure, positive_float, positive_int

__all__ = ["ORDER", "register"]

ORDER = 30


def register(commands: Any) -> None:
    """Add the ``demo`` command."""
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
        "--transfers", type=positive_int, default=8, metavar="N", help="transfers (default 8)"
    )
    demo.add_argument(
        "--interval",
        type=positive_float,
        default=0.5,
        metavar="S",
        help="seconds between transfers (default 0.5)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    """Run the demo (``databay_bus._demo``) and return its exit code."""
    from databay_bus._demo import run_demo

    try:
        code: int = run_demo(args.dir, args.transfers, args.interval)
    except OSError as exc:  # e.g. a --dir that cannot be written (QueueStorageError too)
        where = f" ({exc.filename})" if exc.filename else ""
        raise CommandFailure(f"{exc.strerror or exc}{where}") from None
    return code
