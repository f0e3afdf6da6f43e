"""``databay-bus validate PIPELINE``: check a pipeline file without starting anything."""

from __future__ import annotations

import argparse
from typing import Any

from databay_bus.cli._common import EXIT_OK, load_pipeline

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
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    """Load the file in dry-run mode and print what it resolves to."""
    pipeline = load_pipeline(args.pipeline, dry_run=True)
    try:
        if not args.quiet:
            print(pipeline.describe())
            print("valid")
    finally:
        pipeline.close()
    return EXIT_OK
