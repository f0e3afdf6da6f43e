"""Asynchronous inlets and outlets: several slow sources pulled at the same time.

Shows: ``async def pull`` and ``async def push``; a link runs all its inlets concurrently, so
five inlets that each wait 0.2 s make a transfer of about 0.2 s, not 1 s.
Run: ``python examples/asynchronous.py --transfers 3 --interval 1``
Prints, per transfer, one line per inlet and then a summary:
``async.0 sensor-2 answered`` ... ``async.0 received 5 readings``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner


class SlowSensorInlet(Inlet):
    """A source that takes a while to answer (think of a remote API)."""

    def __init__(self, number: int, delay: float) -> None:
        super().__init__(name=f"sensor-{number}")
        self.delay = delay

    async def pull(self, update: Update) -> dict[str, object]:
        await asyncio.sleep(self.delay)
        return {"sensor": self.name, "value": len(self.name) * update.transfer_number}


class AsyncSummaryOutlet(Outlet):
    async def push(self, records: list[Record], update: Update) -> None:
        await asyncio.sleep(0)  # e.g. an async database write
        for record in records:
            print(f"{update} {record.payload['sensor']} answered", flush=True)
        print(f"{update} received {len(records)} readings", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args(argv)

    inlets = [SlowSensorInlet(n, args.delay) for n in range(5)]
    link = Link(inlets, AsyncSummaryOutlet(), interval=args.interval, tags="async")
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
