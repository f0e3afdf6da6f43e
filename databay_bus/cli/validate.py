"""``databay-bus validate PIPELINE``: check a pipeline file without starting anything."""

from __future__ import annotations

import argparse
from typing import Any

from databay_bus.cli._common import EXIT_OK, CommandFailure, load_pipeline

__all__ = ["ORDER", "register"]

ORDER = 20


def register(commands: Any) -> None:
    """Add the ``validate`` command."""
    validate = commands.add_parser(
        "validate",
        help="check a pipeline file and print what it resolves to",
        description="Load PIPELINE without starting anything (queues are not opened) and print "
        "the resolved pipeline, or every problem with its key path.",
    )
    validate.add_argument("pipeline", metavar="PIPELINE", help="the pipeline file")
    validate.add_argument("-q", "--quiet", action="store_true", help="print nothing when valid")
    validate.add_argument(
        "--check",
        action="store_true",
        help="also try, without side effects, what the pipeline needs: files and directories "
        "exist and are writable, hosts resolve, the queue file opens (exit 1 if not)",
    )
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    """Load the file in dry-run mode and print what it resolves to."""
    pipeline = load_pipeline(args.pipeline, dry_run=True)
    try:
        if not args.quiet:
            print(pipeline.describe())
            print("valid")
        if args.check:
            from databay_bus.cli._probe import probe

            checks = probe(pipeline)
            failed = [check for check in checks if not check.ok]
            if not args.quiet or failed:
                print("checks:")
                for check in checks if not args.quiet else failed:
                    print(check)
                print(f"{len(checks) - len(failed)} ok, {len(failed)} failed")
            if failed:
                raise CommandFailure(f"{len(failed)} check(s) failed")
    finally:
        pipeline.close()
    return EXIT_OK
