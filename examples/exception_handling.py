"""Exception handling: a flaky inlet, with and without ``ignore_exceptions``.

Shows: ``Link(ignore_exceptions=True)`` logs a failing inlet and keeps transferring with the
rest; a planner with ``ignore_exceptions=False`` (the default) logs the first unignored
failure and shuts down gracefully; ``planner.ignore_exceptions=True`` keeps it running.
Run: ``python examples/exception_handling.py --transfers 4 --interval 1``
Prints the records that made it (``ignoring.1 steady 1``), the planner's state after the
strict run (``strict planner stopped after a failure: True``), and error logs on stderr.
"""

from __future__ import annotations

import argparse
import time

from databay_bus import Inlet, Link, Update
from databay_bus.outlets import PrintOutlet
from databay_bus.planners import ApsPlanner


class FlakyInlet(Inlet):
    """Fails on every odd transfer."""

    def pull(self, update: Update) -> str:
        if update.transfer_number % 2:
            raise ConnectionError(f"source unreachable during transfer {update.transfer_number}")
        return f"flaky {update.transfer_number}"


class SteadyInlet(Inlet):
    def pull(self, update: Update) -> str:
        return f"steady {update.transfer_number}"


def run(link: Link, planner: ApsPlanner, transfers: int) -> None:
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < transfers:
        time.sleep(0.01)
    planner.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    print("-- the link ignores exceptions: steady records keep flowing", flush=True)
    tolerant = Link(
        [FlakyInlet(), SteadyInlet()],
        PrintOutlet(only_payload=True),
        args.interval,
        tags="ignoring",
        ignore_exceptions=True,
    )
    run(tolerant, ApsPlanner(tolerant), args.transfers)

    print("-- nothing ignores exceptions: the planner stops at the first failure", flush=True)
    strict = Link(FlakyInlet(), PrintOutlet(only_payload=True), args.interval, tags="strict")
    planner = ApsPlanner(strict)
    planner.start(block=False)
    planner.wait(timeout=30)
    print(f"strict planner stopped after a failure: {not planner.running}", flush=True)

    print("-- the planner ignores exceptions: it logs them and keeps going", flush=True)
    lenient = Link(FlakyInlet(), PrintOutlet(only_payload=True), args.interval, tags="lenient")
    run(lenient, ApsPlanner(lenient, ignore_exceptions=True), args.transfers)


if __name__ == "__main__":
    main()
