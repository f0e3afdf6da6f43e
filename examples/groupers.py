"""Groupers: split one transfer's records into batches, each pushed separately.

Shows: a grouper that groups by a payload field and one that makes pairs; groupers only
re-partition, they do not filter or change records.
Run: ``python examples/groupers.py --transfers 2 --interval 1``
Prints one line per batch: ``groupers.0 batch ['Oslo', 'Oslo']`` (by city) and
``pairs.0 batch [1, 2]`` (pairs of consecutive readings).
"""

from __future__ import annotations

import argparse
import threading
import time

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner

CITIES = ["Oslo", "Lima", "Oslo", "Pune", "Lima"]


_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print from any thread without lines of concurrent pushes running together."""
    with _print_lock:
        print(line, flush=True)


class ReadingsInlet(Inlet):
    def pull(self, update: Update) -> list[dict[str, object]]:
        return [{"city": city, "reading": n + 1} for n, city in enumerate(CITIES)]


class BatchPrintOutlet(Outlet):
    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def push(self, records: list[Record], update: Update) -> None:
        say(f"{update} batch {[r.payload[self.field] for r in records]}")


def group_by_city(batches: list[list[Record]]) -> list[list[Record]]:
    """One batch per city, in the order cities first appear."""
    by_city: dict[str, list[Record]] = {}
    for batch in batches:
        for record in batch:
            by_city.setdefault(record.payload["city"], []).append(record)
    return list(by_city.values())


def pairs(batches: list[list[Record]]) -> list[list[Record]]:
    """Consecutive records two by two (the last batch may hold one)."""
    flat = [record for batch in batches for record in batch]
    return [flat[i : i + 2] for i in range(0, len(flat), 2)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    by_city = Link(
        ReadingsInlet(), BatchPrintOutlet("city"), args.interval, "groupers", groupers=group_by_city
    )
    paired = Link(
        ReadingsInlet(), BatchPrintOutlet("reading"), args.interval, "pairs", groupers=pairs
    )
    planner = ApsPlanner([by_city, paired])
    planner.start(block=False)
    while (
        planner.running
        and min(by_city.transfer_number, paired.transfer_number) + 1 < args.transfers
    ):
        time.sleep(0.01)
    planner.shutdown()


if __name__ == "__main__":
    main()
