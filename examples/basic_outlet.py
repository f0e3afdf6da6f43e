"""Basic outlet: a custom Outlet that keeps a running total of random numbers.

Shows: subclassing ``Outlet`` and implementing ``push``; the built-in ``RandomIntInlet``;
``SchedulePlanner``.
Run: ``python examples/basic_outlet.py --transfers 5 --interval 1``
Prints one line per transfer: ``tally.3 got 42, total 180``.
"""

from __future__ import annotations

import argparse
import random
import time

from databay_bus import Link, Outlet, Record, Update
from databay_bus.inlets import RandomIntInlet
from databay_bus.planners import SchedulePlanner


class TallyOutlet(Outlet):
    """Adds up every payload it receives and prints the running total."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            self.total += record.payload
            print(f"{update} got {record.payload}, total {self.total}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    inlet = RandomIntInlet(0, 100, rng=random.Random(3))
    link = Link(inlet, TallyOutlet(), interval=args.interval, tags="tally")
    planner = SchedulePlanner(link, refresh_interval=min(0.1, args.interval))
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
