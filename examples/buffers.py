"""Buffers: hold records back and release them together.

Shows: ``Buffer(count_threshold=...)`` releasing once *more than* that many records are
stored, ``time_threshold`` as a fallback (either one releases), and flushing what is left at
the end (``buffer.flush = True`` then one more transfer with the inlets removed).
Run: ``python examples/buffers.py --transfers 7 --interval 1``
Prints a line per released batch: ``buffers.3 released 4 records: [0, 1, 2, 3]`` and at the
end ``flushed 3 records: [4, 5, 6]``.
"""

from __future__ import annotations

import argparse
import time

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner
from databay_bus.processors import Buffer


class CounterInlet(Inlet):
    def pull(self, update: Update) -> int:
        return update.transfer_number


class ReleasePrinter(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        if records:
            payloads = [r.payload for r in records]
            print(f"{update} released {len(records)} records: {payloads}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=7)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--count", type=int, default=3, help="release when more are stored")
    parser.add_argument("--max-wait", type=float, default=3600, help="seconds; time threshold")
    args = parser.parse_args(argv)

    buffer = Buffer(count_threshold=args.count, time_threshold=args.max_wait)
    inlet = CounterInlet()
    link = Link(inlet, ReleasePrinter(), args.interval, tags="buffers", processors=buffer)
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()

    # Records still in the buffer would be lost; push them out with one last transfer.
    with buffer.lock:
        left = [r.payload for r in buffer.records]
        buffer.flush = True
    link.remove_inlets(inlet)
    link.transfer()
    print(f"flushed {len(left)} records: {left}", flush=True)


if __name__ == "__main__":
    main()
