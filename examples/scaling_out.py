"""Scaling out: one pipeline run by several processes on one PostgresQueue.

What it shows: this script starts ``--workers`` copies of itself. Each runs the same link
(``orders``, every ``--interval`` seconds) on an ApsPlanner with a ``PostgresQueue`` in one
schema. Every tick of the link is pulled by exactly one process (the queue claims the tick's
scheduled fire time); every process delivers: due batches are claimed with ``FOR UPDATE SKIP
LOCKED`` and leased, so each batch goes to one process, and records another process stored
wake the idle ones (LISTEN/NOTIFY). After ``--duration`` seconds the workers stop pulling,
deliver what is left, and report; the script checks that no tick was pulled twice and that
every stored record was delivered, then drops its schema.

Needs the ``postgres`` extra and a PostgreSQL server (``--dsn``, else
``DATABAY_BUS_POSTGRES_DSN``, else postgresql://postgres@127.0.0.1:5432/test); without one it
says so and exits 0.

Run::

    python examples/scaling_out.py                          # 3 workers for 6 s
    python examples/scaling_out.py --workers 4 --duration 10 --interval 0.5

Prints one line per worker and a summary, e.g.::

    worker w1: pulled 11 ticks, pushed 30 records
    worker w2: pulled 10 ticks, pushed 36 records
    worker w3: pulled 9 ticks, pushed 24 records
    3 workers: 30 ticks, each pulled by one process; 90 records stored, 90 delivered, 0 waiting
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update

__all__ = ["main"]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class Orders(Inlet):
    """Three orders per tick this process claimed; remembers the ticks it pulled."""

    def __init__(self, worker: str, pull_until: float) -> None:
        super().__init__(name="orders")
        self.worker = worker
        self.pull_until = pull_until
        self.ticks: list[float] = []
        self.link: Link | None = None

    def pull(self, update: Update) -> list[dict[str, Any]]:
        if time.monotonic() >= self.pull_until:
            return []
        assert self.link is not None
        tick = getattr(self.link._delivery, "claimed_tick", None)
        if tick is not None:
            self.ticks.append(tick)
        return [{"by": self.worker, "tick": tick, "n": n} for n in range(3)]


class Warehouse(Outlet):
    """Counts the records it receives (a real outlet would write them somewhere)."""

    def __init__(self) -> None:
        super().__init__(name="warehouse")
        self.ids: list[str | None] = []
        self._lock = threading.Lock()

    def push(self, records: list[Record], update: Update) -> None:
        with self._lock:
            self.ids.extend(record.id for record in records)


def run_worker(args: argparse.Namespace) -> int:
    """One process of the pipeline: run the link, stop pulling, deliver the rest, report."""
    from databay_bus.planners import ApsPlanner
    from databay_bus.queue import PostgresQueue

    queue = PostgresQueue(args.dsn, schema=args.schema, lease=5.0, renew_interval=1.0)
    inlet = Orders(args.worker, time.monotonic() + args.duration)
    outlet = Warehouse()
    link = Link(inlet, outlet, args.interval, tags="orders", queue=queue, batch_size=10)
    inlet.link = link
    planner = ApsPlanner(link, ignore_exceptions=True)
    planner.start(block=False)
    time.sleep(args.duration)
    deadline = time.monotonic() + 30
    while queue.waiting("orders") and time.monotonic() < deadline:
        time.sleep(0.1)  # the planners (this one and the others) deliver what is left
    time.sleep(args.interval * 2)  # let transfers still running settle their batches
    planner.shutdown()
    queue.close()
    print(json.dumps({"worker": args.worker, "ticks": inlet.ticks, "pushed": outlet.ids}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABAY_BUS_POSTGRES_DSN", DEFAULT_DSN))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of pulling")
    parser.add_argument("--interval", type=float, default=0.2, help="the link's interval")
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    try:
        import psycopg

        psycopg.connect(args.dsn, connect_timeout=3).close()
    except Exception as exc:  # no driver or no server: nothing to show
        print(f"skipped: no PostgreSQL at the DSN ({type(exc).__name__}: {exc})")
        return 0
    schema = f"example_{secrets.token_hex(4)}"
    command = [sys.executable, os.path.abspath(__file__), "--dsn", args.dsn, "--schema", schema]
    command += ["--duration", str(args.duration), "--interval", str(args.interval)]
    try:
        workers = [
            subprocess.Popen([*command, "--worker", f"w{i + 1}"], stdout=subprocess.PIPE, text=True)
            for i in range(args.workers)
        ]
        reports = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]
        with psycopg.connect(args.dsn) as conn:
            stored = conn.execute(f'SELECT count(*) FROM "{schema}".records'.encode()).fetchone()
            waiting = conn.execute(
                f'SELECT count(*) FROM "{schema}".deliveries WHERE state < 2'.encode()
            ).fetchone()
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    ticks: Counter[float] = Counter()
    delivered: set[str] = set()
    for report in reports:
        ticks.update(report["ticks"])
        delivered.update(report["pushed"])
        print(
            f"worker {report['worker']}: pulled {len(report['ticks'])} ticks, "
            f"pushed {len(report['pushed'])} records"
        )
    twice = sorted(tick for tick, count in ticks.items() if count > 1)
    once = "each pulled by one process" if not twice else f"{len(twice)} PULLED TWICE"
    print(
        f"{args.workers} workers: {len(ticks)} ticks, {once}; {stored[0] if stored else 0} "
        f"records stored, {len(delivered)} delivered, {waiting[0] if waiting else 0} waiting"
    )
    return 0 if not twice else 1


if __name__ == "__main__":
    sys.exit(main())
