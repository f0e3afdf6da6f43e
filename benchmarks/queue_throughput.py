"""Durable end-to-end throughput of one queued link, beside the disk's raw fsync rate.

What it measures, in one run on one disk:

* raw ``os.fsync`` calls per second on a file in ``--dir``, two ways: overwriting 1 byte
  in place (the cheapest fsync there is) and appending 64 bytes (what the harness,
  ``python -m benchmarks --only 5``, uses as its anchor; slower, as the file grows). The
  B=1 ratio is printed against both;
* records per second through ``Link(queue=SqliteQueue(...))`` with one outlet, at 1, 100
  and 1000 records per transfer: pull, encode, enqueue (one fsynced commit), push, ack
  (one commit, fsynced with the next enqueue: ``ack_sync="normal"``, see
  databay_bus/queue/sqlite.py) - everything a record costs in a steady stream of transfers;
* B=1 again with ``ack_sync="full"`` (the ack fsynced too), for comparison;
* the same with 4 links on 4 threads sharing one file (each thread has its own connection,
  as documented in databay_bus/queue/sqlite.py).

Run: ``python benchmarks/queue_throughput.py [--seconds 3] [--dir DIR]``. Prints a table.
Targets (issue 5): B=1000 >= 50,000 records/s; B=1 >= 0.3 x the raw fsync rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import SqliteQueue

__all__ = ["main"]


class BatchInlet(Inlet):
    def __init__(self, size: int) -> None:
        super().__init__(name="batch")
        self.size = size
        self.n = 0

    def pull(self, update: Update) -> list[dict[str, object]]:
        start, self.n = self.n, self.n + self.size
        return [{"n": i, "symbol": "ABC", "price": 101.25} for i in range(start, self.n)]


class CountOutlet(Outlet):
    def __init__(self) -> None:
        super().__init__(name="count")
        self.count = 0

    def push(self, records: list[Record], update: Update) -> None:
        self.count += len(records)


def fsync_rate(directory: Path, seconds: float, append: bool = False) -> float:
    """fsyncs per second: after overwriting 1 byte in place, or after appending 64 bytes."""
    path = directory / "fsync.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_APPEND if append else 0), 0o644)
    try:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            if append:
                os.write(fd, b"x" * 64)
            else:
                os.pwrite(fd, bytes([count % 256]), 0)
            os.fsync(fd)
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def fsync_rates(directory: Path, seconds: float) -> tuple[float, float]:
    """(overwrite, append) fsync rates, each over ``seconds / 2``."""
    return fsync_rate(directory, seconds / 2), fsync_rate(directory, seconds / 2, append=True)


def b1_lines(
    label: str, rate: float, before: tuple[float, float], after: tuple[float, float]
) -> str:
    """A B=1 figure with its ratios to the mean fsync rates measured around it."""
    overwrite, append = ((b + a) / 2 for b, a in zip(before, after, strict=True))
    return (
        f"raw fsync/s around the next line: overwrite {overwrite:,.0f}, append {append:,.0f}\n"
        f"{label} {rate:>12,.0f}  ({rate / overwrite:.2f} x overwrite fsync rate, "
        f"{rate / append:.2f} x append fsync rate)"
    )


def link_rate(directory: Path, size: int, seconds: float, ack_sync: str = "normal") -> float:
    path = directory / f"b{size}.db"
    queue = SqliteQueue(path, ack_sync=ack_sync)
    try:
        outlet = CountOutlet()
        link = Link(BatchInlet(size), outlet, 1, tags=f"b{size}", queue=queue, batch_size=size)
        link.transfer()  # warm up
        outlet.count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            link.transfer()
        elapsed = time.perf_counter() - start
        assert queue.stats().pending() == 0
        return outlet.count / elapsed
    finally:
        queue.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def threads_rate(directory: Path, seconds: float, size: int = 100) -> float:
    path = directory / "threads.db"
    queue = SqliteQueue(path)
    outlets = [CountOutlet() for _ in range(4)]
    links = [
        Link(BatchInlet(size), outlets[i], 1, tags=f"t{i}", queue=queue, batch_size=size)
        for i in range(4)
    ]
    stop = threading.Event()

    def run(link: Link) -> None:
        while not stop.is_set():
            link.transfer()

    threads = [threading.Thread(target=run, args=(link,)) for link in links]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    queue.close()
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return sum(o.count for o in outlets) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measure")
    parser.add_argument("--dir", default=None, help="directory on the disk to measure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        directory = Path(name)
        print(f"directory: {directory}")
        # The disk's fsync rate drifts on a shared machine: measure it right before and
        # after each B=1 figure and compare with their mean.
        for sync in ("normal", "full"):
            before = fsync_rates(directory, args.seconds)
            rate = link_rate(directory, 1, args.seconds, ack_sync=sync)
            label = f"queued link, B=1, ack_sync={sync!r}:".ljust(36) + " records/s"
            print(b1_lines(label, rate, before, fsync_rates(directory, args.seconds)))
        for size in (100, 1000):
            rate = link_rate(directory, size, args.seconds)
            print(f"queued link, B={size:<5} records/s    {rate:>12,.0f}")
        rate = threads_rate(directory, args.seconds)
        print(f"4 links/4 threads, B=100, one file  {rate:>12,.0f} records/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
