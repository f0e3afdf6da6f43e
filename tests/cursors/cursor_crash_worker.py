"""A process to kill: one queued link whose inlet reads an endless numbered source by cursor.

Run by tests/cursors/test_cursors_crash.py as :func:`work` in a process forked from a
multiprocessing forkserver that imported databay_bus once (so 50 kills cost no 50 imports),
or by hand::

    python cursor_crash_worker.py DIR    # prints 'ready' once the queue is open; runs until killed

The inlet keeps no state of its own: each pull reads ``update.cursor`` (the next number, None
at first), returns the next 1..7 numbers and commits the number after them. Its outlet always
fails with a retry far in the future, so every ingested record stays in the queue file for
:func:`ingested` to read back in enqueue order.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import RetryPolicy, SqliteQueue
from databay_bus.testing import FakeClock

__all__ = ["ingested", "work"]

LINK, INLET, OUTLET = "crash", "numbers", "sink"


class Numbers(Inlet):
    """The source: 0, 1, 2, ... read in pages from the committed cursor."""

    def __init__(self) -> None:
        super().__init__(name=INLET)
        self.rng = random.Random()

    def pull(self, update: Update) -> list[int]:
        start = update.cursor or 0
        page = list(range(start, start + self.rng.randint(1, 7)))
        update.commit_cursor(page[-1] + 1)
        return page


class Down(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        raise ConnectionError("down on purpose: the records stay queued")


def ingested(directory: Path) -> tuple[list[int], object]:
    """Every record payload in the queue in enqueue order, and the committed cursor."""
    clock = FakeClock()
    clock.advance(10**10)  # past every retry time: everything waiting is due
    with SqliteQueue(directory / "queue.db", clock=clock) as queue:
        stored = queue.cursor(LINK, INLET)
        payloads = [record.payload for record in queue.due(LINK, OUTLET, 10**9)]
        assert queue.integrity_check() == "ok"
    return payloads, None if stored is None else stored.value


def work(directory: str, transfers: Any = None) -> None:
    """Open the queue, then transfer until killed, counting transfers in ``transfers.value``
    (a ``multiprocessing.Value``) when given, else printing 'ready' first."""
    import logging

    logging.disable(logging.CRITICAL)
    queue = SqliteQueue(Path(directory) / "queue.db")
    link = Link(
        Numbers(),
        Down(name=OUTLET),
        60,
        tags=LINK,
        queue=queue,
        ignore_exceptions=True,
        retry=RetryPolicy(max_attempts=None, initial_delay=10**9, max_delay=10**9),
    )
    if transfers is None:
        print("ready", flush=True)
    while True:
        link.transfer()
        if transfers is not None:
            with transfers.get_lock():
                transfers.value += 1


if __name__ == "__main__":
    work(sys.argv[1])
