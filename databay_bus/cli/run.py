"""``databay-bus run PIPELINE``: run a pipeline until a signal or a bound, then stop gracefully."""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from databay_bus._signals import stop_event_on_signals
from databay_bus.cli._common import (
    EXIT_OK,
    CommandFailure,
    level,
    load_pipeline,
    positive_float,
    positive_int,
)

__all__ = ["ORDER", "register"]

ORDER = 10

_LOGGER = logging.getLogger(__name__)

_REASONS = {
    "stopped": "signal received",
    "duration": "--duration reached",
    "transfers": "--transfers reached",
}


def register(commands: Any) -> None:
    """Add the ``run`` command."""
    run = commands.add_parser(
        "run",
        help="run a pipeline until SIGINT/SIGTERM (or a bound)",
        description="Load PIPELINE, start its planner and run until SIGINT or SIGTERM, "
        "--duration or --transfers; then shut down gracefully and exit 0.",
    )
    run.add_argument("pipeline", metavar="PIPELINE", help="the pipeline file (.toml or .json)")
    run.add_argument(
        "--duration", type=positive_float, metavar="S", help="stop after S seconds ('90', '5m')"
    )
    run.add_argument(
        "--transfers",
        type=positive_int,
        metavar="N",
        help="stop once every link has completed at least N transfers",
    )
    run.add_argument(
        "--status-interval",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="log one status line per link every S seconds at INFO (default 10)",
    )
    run.add_argument(
        "--log-level",
        type=level,
        metavar="LEVEL",
        help="level of the databay_bus logger (default: the file's log_level, else INFO)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    """Run the pipeline; print each link's final status line and why it stopped."""
    pipeline = load_pipeline(args.pipeline)
    chosen = args.log_level or pipeline.log_level or logging.INFO
    pipeline.configure_logging(chosen)
    stop = threading.Event()
    _LOGGER.info("running %s (%d links)", args.pipeline, len(pipeline.links))
    with stop_event_on_signals(stop):
        reason = pipeline.run(
            duration=args.duration,
            transfers=args.transfers,
            stop=stop,
            status_interval=args.status_interval,
        )
    for line in _final_status(pipeline):
        print(line)
    if reason == "failed":
        raise CommandFailure("the pipeline stopped after an error (see the log above)")
    print(f"stopped ({_REASONS[reason]})")
    return EXIT_OK


def _final_status(pipeline: Any) -> list[str]:
    from databay_bus.config.pipeline import status_line

    metrics = pipeline.final_metrics or {"links": []}
    return [status_line(entry) for entry in metrics["links"]]
