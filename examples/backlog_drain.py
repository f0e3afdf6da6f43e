"""A queue's backlog drained within ``drain_budget`` once an outlet comes back.

What it shows: while the warehouse outlet is down, every transfer queues 2,000 readings in a
SqliteQueue. Once it is back, one transfer does not stop at ``batch_size`` (500) records: it
goes on chunk after chunk, one chunk in memory at a time, until the backlog is delivered or
``drain_budget`` seconds have passed; the next transfer goes on where it stopped. The
warehouse takes 50 ms per batch, so with the budget of 0.5 s given here a transfer drains
about 10 chunks. Progress is logged at INFO (after 1 s, then every 5 s, and how each drain
ended once it lasted 1 s or more: ``--drain-budget 5`` drains it all in one transfer of 2 s,
and says so).

Run::

    python examples/backlog_drain.py                   # 10 transfers while down
    python examples/backlog_drain.py --transfers 4 --drain-budget 0   # one chunk per transfer

Prints how much waited, then what each draining transfer delivered, e.g.::

    outlet down: 10 transfers queued 20000 readings
    transfer 1: delivered 5000, 15000 waiting
    transfer 2: delivered 5000, 10000 waiting
    transfer 3: delivered 5000, 5000 waiting
    transfer 4: delivered 5000, 0 waiting
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from databay_bus import Inlet, Link, Outlet, Record, Update, logs
from databay_bus.queue import RetryPolicy, SqliteQueue

__all__ = ["main"]

PER_PULL = 2000


class ReadingsInlet(Inlet):
    """``PER_PULL`` readings per pull while ``on``, nothing after."""

    def __init__(self) -> None:
        super().__init__(name="sensor")
        self.on = True
        self.next = 0

    def pull(self, update: Update) -> list[dict[str, float]]:
        if not self.on:
            return []
        first, self.next = self.next, self.next + PER_PULL
        return [{"n": n, "celsius": 20 + n % 100 / 10} for n in range(first, self.next)]


class Warehouse(Outlet):
    """Takes 50 ms per batch; raises while ``down``."""

    def __init__(self) -> None:
        super().__init__(name="warehouse")
        self.down = True
        self.count = 0

    def push(self, records: list[Record], update: Update) -> None:
        if self.down:
            raise ConnectionError("warehouse is unreachable")
        time.sleep(0.05)
        self.count += len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A backlog drained within drain_budget.")
    parser.add_argument("--transfers", type=int, default=10, help="transfers while down")
    parser.add_argument(
        "--drain-budget", type=float, default=0.5, help="seconds a transfer drains (0: one chunk)"
    )
    args = parser.parse_args(argv)
    logs.enable("INFO")
    logging.getLogger("databay_bus.delivery.queued").setLevel(logging.ERROR)  # the outage
    inlet, warehouse = ReadingsInlet(), Warehouse()
    with tempfile.TemporaryDirectory() as temp:
        queue = SqliteQueue(Path(temp) / "readings.db")
        link = Link(
            inlet,
            warehouse,
            60,
            tags="readings",
            queue=queue,
            retry=RetryPolicy(max_attempts=None, initial_delay=0),
            batch_size=500,
            drain_budget=args.drain_budget,
        )
        for _ in range(args.transfers):
            link.transfer()
        print(
            f"outlet down: {args.transfers} transfers queued {queue.waiting('readings')} readings"
        )
        inlet.on, warehouse.down = False, False
        number = 0
        while queue.waiting("readings"):
            number += 1
            before = warehouse.count
            link.transfer()
            waiting = queue.waiting("readings")
            print(f"transfer {number}: delivered {warehouse.count - before}, {waiting} waiting")
        queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
