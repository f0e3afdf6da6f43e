"""Many small queued links on one SqliteQueue file: group commit, CPU and disk apart.

Issue 19's case (scenario 5 of ``python -m benchmarks``): 20 links at B = 1 record per
transfer share one SqliteQueue, one thread each looping ``transfer()``; the figure is their
committed transfers per second together, against the disk's raw fsync rate. On a fast disk
the case is bound by CPU (the GIL), on a slow or busy one by the fsync; a disk shared with
other work swings between the two from one second to the next. This script measures it
either way:

* ``--dir DIR`` (default: the temp directory): on a real disk, with the raw fsync rate
  (append 64 bytes, fsync: the harness's anchor) measured right before and right after;
* ``--simulate-fsync US``: on ``--dir`` (use a tmpfs such as /dev/shm, whose fsync costs
  nothing), every commit that SQLite fsyncs (``synchronous=FULL``) then sleeps US
  microseconds before releasing the write lock, as a disk with a fixed fsync latency
  would (the sleep releases the GIL, as fsync does); the anchor is that sleep's own rate.

It prints transfers/s, the anchor and their ratio, the CPU the process used (cores, and
microseconds per transfer) and how many write jobs (enqueues and acks) shared a commit.

Run: ``python benchmarks/group_commit.py [--links 20] [--seconds 2] [--dir DIR]
[--simulate-fsync 50]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from queue_throughput import CountOutlet, fsync_rate  # a sibling script: run from benchmarks/

from databay_bus import Inlet, Link, Update
from databay_bus.queue import SqliteQueue

__all__ = ["main"]


class OneInlet(Inlet):
    def pull(self, update: Update) -> list[dict[str, object]]:
        return [{"n": 1, "symbol": "ABC", "price": 101.25}]


def sleep_rate(delay: float, seconds: float) -> float:
    """``time.sleep(delay)`` calls per second (the simulated fsync's own rate)."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        time.sleep(delay)
        count += 1
    return count / (time.perf_counter() - start)


def slow_fsync_connections(delay: float) -> Callable[[], None]:
    """Make the connections opened from now on (SqliteQueue's) sleep ``delay`` s after each
    fsynced COMMIT; returns the function that undoes it."""

    class SlowConnection(sqlite3.Connection):
        full = True  # SqliteQueue opens connections with synchronous=FULL

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            cursor = super().execute(sql, *args)
            if sql.startswith("PRAGMA synchronous="):
                self.full = sql.endswith("FULL")
            elif sql == "COMMIT" and self.full:
                time.sleep(delay)
            return cursor

    real = sqlite3.connect

    def connect(*args: Any, **options: Any) -> sqlite3.Connection:
        options["factory"] = SlowConnection
        conn: sqlite3.Connection = real(*args, **options)
        return conn

    setattr(sqlite3, "connect", connect)  # noqa: B010 - SqliteQueue calls sqlite3.connect

    def undo() -> None:
        setattr(sqlite3, "connect", real)  # noqa: B010

    return undo


def run_links(directory: Path, links: int, seconds: float) -> dict[str, float]:
    """``links`` queued links at B = 1 on one file, a thread each looping transfer()."""
    queue = SqliteQueue(directory / "links.sqlite3")
    groups: list[int] = []
    commit_group = queue._commit_group

    def counting(jobs: list[Any]) -> None:
        groups.append(len(jobs))
        commit_group(jobs)

    queue._group._commit = counting
    outlets = [CountOutlet() for _ in range(links)]
    made = [
        Link([OneInlet()], [out], 60.0, queue=queue, tags=f"l{i}") for i, out in enumerate(outlets)
    ]
    counts = [0] * links
    start, stop = threading.Barrier(links + 1), threading.Event()

    def loop(index: int) -> None:
        made[index].transfer()  # warm up
        start.wait()
        while not stop.is_set():
            made[index].transfer()
            counts[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(links)]
    try:
        for link in made:
            link.on_start()
        for thread in threads:
            thread.start()
        start.wait()
        began, cpu = time.perf_counter(), time.process_time()
        before = len(groups), sum(groups)
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        commits, jobs = len(groups) - before[0], sum(groups) - before[1]
        pending = queue.stats().pending()
    finally:
        stop.set()
        for link in made:
            link.on_shutdown()
        queue.close()
    transfers = sum(counts)
    if pending or sum(out.count for out in outlets) != transfers + links:
        raise AssertionError(f"{pending} records still pending, or pushes were lost")
    return {
        "transfers_per_s": transfers / elapsed,
        "cores": cpu / elapsed,
        "cpu_us_per_transfer": 1e6 * cpu / max(1, transfers),
        "jobs_per_commit": jobs / max(1, commits),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--simulate-fsync", type=float, metavar="US", default=None)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="databay-group-commit-", dir=args.dir))
    undo: Callable[[], None] | None = None
    try:
        if args.simulate_fsync is None:
            anchor = fsync_rate(folder, 1.0, append=True)
            name = "raw fsync"
        else:
            delay = args.simulate_fsync / 1e6
            anchor = sleep_rate(delay, 1.0)
            name = f"simulated fsync (sleep {args.simulate_fsync:g} us)"
            undo = slow_fsync_connections(delay)
        found = run_links(folder, args.links, args.seconds)
        if args.simulate_fsync is None:
            anchor = (anchor + fsync_rate(folder, 1.0, append=True)) / 2
    finally:
        if undo is not None:
            undo()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    rate = found["transfers_per_s"]
    print(
        f"{args.links} links at B=1: {rate:,.0f} transfers/s; {name}: {anchor:,.0f}/s; "
        f"ratio {rate / anchor:.2f}x; CPU {found['cores']:.2f} cores, "
        f"{found['cpu_us_per_transfer']:.0f} us per transfer; "
        f"{found['jobs_per_commit']:.1f} jobs per commit"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
