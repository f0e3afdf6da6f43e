"""One of several processes running one pipeline on a PostgresQueue; the failure tests kill it.

Run by tests/queue/test_pg_failures.py (and by hand)::

    python pg_worker.py DSN SCHEMA DIR NAME [--interval S] [--lease S] [--push-delay S]

An ApsPlanner runs one link (key ``shared``) every ``interval`` seconds. The inlet pulls
``PER_PULL`` records per tick it claimed and appends ``<tick>`` to ``DIR/pulls-NAME-PID.log``;
the outlet sleeps ``push-delay`` per batch (a window to be killed in), then appends each
record's id to ``DIR/pushed-NAME-PID.log`` in one write. Both files are written with one
``os.write`` each, so a SIGKILL never leaves half a line. ``DIR/stop`` makes the inlet pull
nothing (the workers then only deliver); ``DIR/exit`` makes the worker shut down and exit 0;
while ``DIR/hold-NAME`` exists, worker NAME's pushes do not end (it keeps its leases, and
has not acked them, for as long as a test needs).
Prints ``ready`` once its planner runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner
from databay_bus.queue import PostgresQueue, RetryPolicy

__all__ = ["BATCH", "BATCH_SIZE", "PER_PULL", "forked", "main"]

PER_PULL = 5  # records per claimed tick
BATCH = 4  # records per pushed batch (the grouper)
BATCH_SIZE = 20  # due records claimed per outlet per transfer


def _append(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class TickInlet(Inlet):
    """Pulls PER_PULL records naming the tick this process claimed; logs the pull."""

    def __init__(self, folder: Path, name: str) -> None:
        super().__init__(name="ticks")
        self.folder = folder
        self.log = folder / f"pulls-{name}-{os.getpid()}.log"
        self.worker = name
        self.link: Link | None = None

    def pull(self, update: Update) -> list[Any]:
        if (self.folder / "stop").exists():
            return []
        assert self.link is not None
        tick = getattr(self.link._delivery, "claimed_tick", None)
        _append(self.log, f"{tick!r}\n")
        return [[self.worker, tick, index] for index in range(PER_PULL)]


class LogOutlet(Outlet):
    """Takes ``delay`` per batch, then logs the ids of the batch in one write."""

    def __init__(self, folder: Path, name: str, delay: float) -> None:
        super().__init__(name="out")
        self.log = folder / f"pushed-{name}-{os.getpid()}.log"
        self.hold = folder / f"hold-{name}"
        self.delay = delay

    def push(self, records: list[Record], update: Update) -> None:
        time.sleep(self.delay)
        while self.hold.exists():
            time.sleep(0.01)
        _append(self.log, "".join(f"{record.id}\n" for record in records))


def batches(groups: list[list[Record]]) -> list[list[Record]]:
    return [g[i : i + BATCH] for g in groups for i in range(0, len(g), BATCH)]


def main(argv: list[str] | None = None, ready: Any = None) -> int:
    """Run the worker; ``ready`` (an Event, for a forked worker) is set where the command
    line version prints 'ready'."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn")
    parser.add_argument("schema")
    parser.add_argument("folder", type=Path)
    parser.add_argument("name")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--push-delay", type=float, default=0.05)
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    queue = PostgresQueue(
        args.dsn,
        schema=args.schema,
        lease=args.lease,
        renew_interval=args.lease / 4,
        reap_interval=args.lease / 4,
        retention=None,
        max_connections=4,
        connect_timeout=args.connect_timeout,
    )
    inlet = TickInlet(args.folder, args.name)
    link = Link(
        inlet,
        LogOutlet(args.folder, args.name, args.push_delay),
        args.interval,
        tags="shared",
        queue=queue,
        groupers=[batches],
        batch_size=BATCH_SIZE,
        retry=RetryPolicy(max_attempts=None, initial_delay=0.2, jitter=0),
    )
    inlet.link = link
    planner = ApsPlanner(link, threads=4, ignore_exceptions=True)
    planner.start(block=False)
    if ready is not None:
        ready.set()
    else:
        print("ready", flush=True)
    exit_file = args.folder / "exit"
    while not exit_file.exists():
        time.sleep(0.05)
    planner.shutdown(wait=True)
    queue.close()
    return 0


def forked(argv: list[str], stderr_path: str, ready: Any) -> None:
    """The worker in a process forked by the tests' forkserver: its stderr to ``stderr_path``
    (as the command line version's is redirected), then :func:`main`."""
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.exit(main(argv, ready))


if __name__ == "__main__":
    sys.exit(main())
