"""Processors: filter and transform records, for the whole link or for one outlet.

Shows: link processors (run on all records, before groupers) and outlet processors (run
just before that outlet's push). Processors may replace ``record.payload``.
Run: ``python examples/processors.py --transfers 3 --interval 1``
Prints two kinds of lines: ``all: 3.0 -> 30.0`` for every even number (odd ones are dropped
by a link processor) and ``big: 8.0 -> 80.0`` only for values of 60 and more.
"""

from __future__ import annotations

import argparse
import threading
import time

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner

_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print from any thread without lines of concurrent pushes running together."""
    with _print_lock:
        print(line, flush=True)


class CounterInlet(Inlet):
    def pull(self, update: Update) -> list[int]:
        start = update.transfer_number * 4
        return list(range(start, start + 4))


class LabelledPrint(Outlet):
    def __init__(self, label: str, processors: object = None) -> None:
        super().__init__(processors=processors, name=label)  # type: ignore[arg-type]

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            say(f"{self.name}: {record.metadata['original']} -> {record.payload}")


def only_even(records: list[Record]) -> list[Record]:
    """Filter: keep even payloads."""
    return [r for r in records if r.payload % 2 == 0]


def times_ten(records: list[Record]) -> list[Record]:
    """Transform: remember the original value, multiply by ten."""
    for record in records:
        record.metadata["original"] = float(record.payload)
        record.payload = float(record.payload * 10)
    return records


def at_least_sixty(records: list[Record]) -> list[Record]:
    return [r for r in records if r.payload >= 60]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    outlets = [LabelledPrint("all"), LabelledPrint("big", processors=at_least_sixty)]
    link = Link(CounterInlet(), outlets, args.interval, processors=[only_even, times_ten])
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
