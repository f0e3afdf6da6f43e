"""Backlog drain: an outlet down while records queue up, then back (issue 19).

One queued link (``SqliteQueue``), an inlet returning B = 1 000 records per transfer and an
outlet that fails while "down": transfers run until ``--records`` records wait, then the
outlet comes back and transfers run until nothing is pending. Printed: the rate at which the
backlog built up and drained, and the peak RSS over the idle process (``ru_maxrss`` minus the
RSS before the link was made), which must stay flat: ``due()`` reads at most ``batch_size``
records per transfer, never the whole backlog.

Run: ``python benchmarks/backlog_drain.py [--records 1000000] [--batch 1000] [--dir DIR]``.
Target: peak RSS <= 200 MB above the idle process.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import RetryPolicy, SqliteQueue

__all__ = ["main"]


class BatchInlet(Inlet):
    def __init__(self, size: int) -> None:
        super().__init__(name="batch")
        self.payloads = [{"id": i, "name": f"item-{i}", "value": i * 0.5} for i in range(size)]

    def pull(self, update: Update) -> list[Any]:
        return list(self.payloads)


class SwitchOutlet(Outlet):
    def __init__(self) -> None:
        super().__init__(name="out")
        self.down = True
        self.count = 0

    def push(self, records: list[Record], update: Update) -> None:
        if self.down:
            raise ConnectionError("the outlet is down")
        self.count += len(records)


def _rss_mb() -> float:
    """The current resident set size in MB (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--dir", default=None, help="directory on the disk to measure")
    args = parser.parse_args(argv)
    logging.getLogger("databay_bus").setLevel(logging.ERROR)  # the outlet fails on purpose
    idle = _rss_mb()
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        queue = SqliteQueue(Path(name) / "backlog.sqlite3")
        outlet = SwitchOutlet()
        # Never dead-letter while down; retry at once when back.
        retry = RetryPolicy(max_attempts=None, initial_delay=0.001, max_delay=0.001, jitter=0)
        link = Link(
            BatchInlet(args.batch),
            outlet,
            60,
            tags="backlog",
            queue=queue,
            batch_size=args.batch,
            retry=retry,
        )
        link.on_start()
        peak = idle
        started = time.perf_counter()
        while queue.stats().pending() < args.records:
            link.transfer()
            peak = max(peak, _rss_mb())
        built = time.perf_counter() - started
        waiting = queue.stats().pending()
        print(
            f"backlog: {waiting:,} records queued in {built:.1f} s ({waiting / built:,.0f} rec/s)"
        )
        outlet.down = False
        inlet = link.inlets[0]
        link.remove_inlets(inlet)  # drain only: nothing new arrives
        started = time.perf_counter()
        last_report = started
        while queue.stats().pending("backlog", "out"):
            link.transfer()
            peak = max(peak, _rss_mb())
            now = time.perf_counter()
            if now - last_report >= 5:
                print(f"  draining: {outlet.count:,} delivered, {now - started:.0f} s")
                last_report = now
        drained = time.perf_counter() - started
        link.on_shutdown()
        queue.close()
    rate = outlet.count / drained
    print(f"drained {outlet.count:,} records in {drained:.1f} s ({rate:,.0f} rec/s)")
    above = peak - idle
    print(f"RSS: idle {idle:.0f} MB, peak {peak:.0f} MB, {above:.0f} MB above idle (target <= 200)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
