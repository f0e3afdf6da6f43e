"""Logging: see what databay_bus does, in Databay's line format.

Shows: the ``databay_bus`` logger tree (default level WARNING); raising it to DEBUG; sending
it to your own handler with ``ISO8601Formatter``; quieting one child logger.
Run: ``python examples/logging_setup.py --transfers 2 --interval 1``
Prints log lines like ``2026-01-02 10:15:02.118|D| logging.0 transfer (databay_bus.link)``
(all on stdout), including the planner's ``Starting``/``Shutting down`` lines.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from databay_bus import Link
from databay_bus.inlets import RandomIntInlet
from databay_bus.logs import DEFAULT_FORMAT, ISO8601Formatter
from databay_bus.outlets import NullOutlet
from databay_bus.planners import ApsPlanner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ISO8601Formatter(DEFAULT_FORMAT, millis_precision=3))
    logging.basicConfig(handlers=[handler], level=logging.WARNING)  # the application's logging
    logging.getLogger("databay_bus").setLevel(logging.DEBUG)  # everything from databay_bus
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

    link = Link(RandomIntInlet(), NullOutlet(), args.interval, tags="logging")
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
