"""Basic metadata: inlets label their records, an outlet decides what to do from the label.

Shows: global metadata given to an inlet; a ``MetadataKey`` declared on the outlet; an outlet
that behaves sensibly when the key is missing.
Run: ``python examples/basic_metadata.py --transfers 3 --interval 1``
Prints only the records of the inlet named ``loud``: ``metadata.0 loud says 17``; the
``quiet`` inlet's records are pulled too, but not printed.
"""

from __future__ import annotations

import argparse
import random
import time

from databay_bus import Link, MetadataKey, Outlet, Record, Update
from databay_bus.inlets import RandomIntInlet
from databay_bus.planners import ApsPlanner


class ConditionalPrintOutlet(Outlet):
    """Prints a record only when its metadata says so."""

    SHOULD_PRINT = MetadataKey("ConditionalPrintOutlet.SHOULD_PRINT")

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            if record.metadata.get(self.SHOULD_PRINT, False):
                print(f"{update} {record.inlet_name} says {record.payload}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    key = ConditionalPrintOutlet.SHOULD_PRINT
    loud = RandomIntInlet(metadata={key: True}, name="loud", rng=random.Random(1))
    quiet = RandomIntInlet(metadata={key: False}, name="quiet", rng=random.Random(2))
    link = Link([loud, quiet], ConditionalPrintOutlet(), interval=args.interval, tags="metadata")
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
