"""Basic inlet: the smallest custom Inlet, printed by a PrintOutlet on a schedule.

Shows: subclassing ``Inlet`` and returning a value from ``pull``; a ``Link``; an ``ApsPlanner``.
Run: ``python examples/basic_inlet.py --transfers 5 --interval 1``
Prints one line per transfer, the update then a simulated temperature: ``thermometer.0 20.7``.
"""

from __future__ import annotations

import argparse
import random
import time

from databay_bus import Inlet, Link, Update
from databay_bus.outlets import PrintOutlet
from databay_bus.planners import ApsPlanner


class ThermometerInlet(Inlet):
    """Pretends to read a thermometer: one reading (a float) per pull."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self._rng = random.Random(seed)

    def pull(self, update: Update) -> float:
        return round(20 + self._rng.uniform(-2, 2), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    link = Link(
        ThermometerInlet(seed=1),
        PrintOutlet(only_payload=True),
        interval=args.interval,
        tags="thermometer",
    )
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
