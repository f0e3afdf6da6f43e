"""Running unattended: a source that fails, a record an outlet rejects, bounded shutdown, logs.

What it shows (docs/production.md walks through each):

* ``pull_retry``: the source fails its first two pulls; they are retried with backoff (within
  the transfer while the wait fits in half the interval), logged once as a failure streak
  ("... back after 2 failures");
* poison-record isolation: one record of the first batch is not a dict, so the outlet fails
  the whole batch; the queued link splits it, the good records are written once and only the
  bad one is retried and dead-lettered, with its own error;
* ``logs.enable("INFO")`` (``--log-format json`` for one JSON object per line) and
  ``planner.shutdown_timeout``, used when the ``with`` block ends.

Run: ``python examples/unattended.py --transfers 6`` (offline; files go to a temporary
directory, or ``--output-dir``). Logs go to stderr. Prints, on stdout::

    source: 2 failed pulls, retried with backoff
    rows.jsonl: every row but the poison one, each written once
    dead letter: 'n/a' after 2 attempts: TypeError: row must be a dict, got 'n/a'
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update, logs
from databay_bus.planners import SchedulePlanner
from databay_bus.queue import RetryPolicy, SqliteQueue


class FlakySource(Inlet):
    """Fails its first ``failures`` pulls (a source briefly down), then returns rows; the
    first batch carries one value that is not a row."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.next = 0

    def pull(self, update: Update) -> list[Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("source unreachable")
        rows: list[Any] = [{"n": self.next + i} for i in range(6)]
        if self.next == 0:
            rows[3] = "n/a"  # the poison record
        self.next += 6
        return rows


class JsonRows(Outlet):
    """Writes a batch of dict rows to a JSON Lines file, all or nothing."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="rows")
        self.path = path

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:  # check the whole batch before writing any of it
            if not isinstance(record.payload, dict):
                raise TypeError(f"row must be a dict, got {record.payload!r}")
        with self.path.open("a", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps({"id": record.id, **record.payload}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=6, help="transfers to run (>= 3)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between them")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--output-dir", help="where the queue and rows.jsonl go")
    args = parser.parse_args(argv)
    logs.enable("INFO", format=args.log_format)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.output_dir or scratch)
        rows = out / "rows.jsonl"
        rows.unlink(missing_ok=True)
        queue = SqliteQueue(out / "queue.sqlite3")
        source = FlakySource(failures=2)
        link = Link(
            source,
            JsonRows(rows),
            args.interval,
            tags="rows",
            pull_retry=RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0),
            queue=queue,
            retry=RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0),
        )
        planner = SchedulePlanner(link, refresh_interval=args.interval)
        planner.shutdown_timeout = 10  # what leaving the with block waits at most
        with planner:
            deadline = time.monotonic() + 60
            while link.transfer_number + 1 < max(3, args.transfers):
                if time.monotonic() > deadline:
                    raise RuntimeError("the planner did not transfer in 60 s")
                time.sleep(0.01)
        pulls = planner.metrics()["links"][0]["pulls"]
        print(f"source: {pulls['pull_failures']} failed pulls, retried with backoff")
        written = [json.loads(line)["n"] for line in rows.read_text(encoding="utf-8").splitlines()]
        expected = [n for n in range(source.next) if n != 3]
        if sorted(written) == expected:
            print("rows.jsonl: every row but the poison one, each written once")
        else:
            print(f"rows.jsonl: UNEXPECTED {sorted(written)} (expected {expected})")
        for letter in queue.dead_letters():
            payload = letter.record.payload if letter.record is not None else None
            print(f"dead letter: {payload!r} after {letter.attempts} attempts: {letter.last_error}")
        queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
