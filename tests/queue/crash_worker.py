"""A process to kill: a planner runs one queued link from a counting inlet to two file outlets.

Run by tests/test_crash.py and benchmarks/stress_queue.py::

    python crash_worker.py run DIR     # runs until killed; prints 'ready' once started
    python crash_worker.py drain DIR   # no new pulls; delivers what is pending, then exits

The inlet resumes after the highest number already stored, so nothing it produced is
skipped across kills; each outlet appends ``number id`` lines to ``DIR/<outlet>.txt`` with
one write per batch. :func:`verify` checks the files against the queue afterwards.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner
from databay_bus.queue import RetryPolicy, SqliteQueue

__all__ = ["BATCH", "OUTLETS", "main", "verify"]

OUTLETS = ("alpha", "beta")
BATCH = 3  # records per pushed batch (the grouper below)
PER_PULL = 7


def _stored(conn: sqlite3.Connection, newest: bool = False) -> Iterator[tuple[int, bytes]]:
    """``(number, data)`` of the stored records, read from the file's chunks (schema 2)."""
    order = "DESC LIMIT 1" if newest else ""
    for first, count, sizes, data in conn.execute(
        f"SELECT first, count, sizes, data FROM chunks ORDER BY first {order}"
    ):
        lengths = [len(data)] if sizes is None else list(struct.unpack(f"<{count}I", sizes))
        offsets = list(itertools.accumulate(lengths, initial=0))
        for index in range(count):
            yield first + index, data[offsets[index] : offsets[index + 1]]


def _last_stored(db: Path) -> int:
    if not db.exists():
        return -1
    with sqlite3.connect(db) as conn:
        try:
            found = list(_stored(conn, newest=True))
        except sqlite3.OperationalError:  # killed before the schema was created
            return -1
    return -1 if not found else int(json.loads(found[-1][1])[0])


class SequenceInlet(Inlet):
    def __init__(self, start: int, enabled: bool) -> None:
        super().__init__(name="seq")
        self.next, self.enabled = start, enabled

    def pull(self, update: Update) -> list[int]:
        if not self.enabled:
            return []
        values = list(range(self.next, self.next + PER_PULL))
        self.next += PER_PULL
        return values


class AppendOutlet(Outlet):
    def __init__(self, name: str, directory: Path, flaky: bool) -> None:
        super().__init__(name=name)
        self.path = directory / f"{name}.txt"
        self.flaky = flaky
        self.rng = random.Random()

    def push(self, records: list[Record], update: Update) -> None:
        if self.flaky and self.rng.random() < 0.2:
            raise ConnectionError("flaky outlet")
        time.sleep(self.rng.random() * 0.003)
        text = "".join(f"{r.payload} {r.id}\n" for r in records)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def _in_threes(batches: list[list[Record]]) -> list[list[Record]]:
    return [b[i : i + BATCH] for b in batches for i in range(0, len(b), BATCH)]


def _link(directory: Path, queue: SqliteQueue, enabled: bool) -> Link:
    inlet = SequenceInlet(_last_stored(directory / "queue.db") + 1, enabled)
    outlets = [AppendOutlet("alpha", directory, False), AppendOutlet("beta", directory, True)]
    return Link(
        inlet,
        outlets,
        0.01,
        tags="crash",
        queue=queue,
        retry=RetryPolicy(max_attempts=None, initial_delay=0.005, max_delay=0.05),
        groupers=[_in_threes],
        batch_size=60,
    )


def main(argv: list[str], ready: Any = None) -> int:
    """Run ``argv`` = ``[mode, directory]``; ``ready`` (an Event, for a forked worker) is set
    where the command line version prints 'ready'."""
    mode, directory = argv[0], Path(argv[1])
    queue = SqliteQueue(directory / "queue.db", retention=None)
    if mode == "drain":
        link = _link(directory, queue, enabled=False)
        while queue.stats().pending():
            link.transfer()
            time.sleep(0.005)
        queue.close()
        return 0
    link = _link(directory, queue, enabled=True)
    planner = ApsPlanner(link, threads=2, ignore_exceptions=True)
    planner.start(block=False)
    if ready is not None:
        ready.set()
    else:
        print("ready", flush=True)
    time.sleep(3600)
    return 1


def verify(directory: Path, kills: int) -> dict[str, Any]:
    """Check the outcome; return figures. Raises AssertionError naming what went wrong."""
    with sqlite3.connect(directory / "queue.db") as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        (queue_id,) = conn.execute("SELECT value FROM meta WHERE key='queue_id'").fetchone()
        stored = {
            int(json.loads(data)[0]): f"{queue_id}-{number}" for number, data in _stored(conn)
        }
        waiting = conn.execute("SELECT COUNT(*) FROM waiting").fetchone()[0]
    assert integrity == "ok", f"integrity_check: {integrity}"
    assert waiting == 0, f"{waiting} deliveries still waiting after the drain"
    assert sorted(stored) == list(range(len(stored))), "a stored number is missing: source gap"
    figures: dict[str, Any] = {"kills": kills, "records": len(stored), "integrity": integrity}
    for name in OUTLETS:
        lines = (directory / f"{name}.txt").read_text().split("\n")[:-1]  # whole lines only
        seen: Counter[int] = Counter()
        for line in lines:
            number_text, record_id = line.split(" ")
            number = int(number_text)
            assert stored.get(number) == record_id, f"{name}: {line!r} was never stored as such"
            seen[number] += 1
        missing = set(stored) - set(seen)
        assert not missing, f"{name}: {len(missing)} records lost, e.g. {sorted(missing)[:5]}"
        duplicates = sum(count - 1 for count in seen.values())
        # a kill interrupts at most one batch per outlet between its push and its ack
        assert duplicates <= kills * BATCH, f"{name}: {duplicates} duplicates for {kills} kills"
        figures[f"{name}_duplicates"] = duplicates
    return figures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
