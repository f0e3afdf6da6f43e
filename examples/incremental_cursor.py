"""Incremental pulls: an inlet that reads "everything since last time" with a durable cursor.

What it shows: ``ChangesInlet`` reads a change log (a deterministic list standing in for an
API or a table) from just after ``update.cursor`` and stages the id of the last change it
read with ``update.commit_cursor(...)``. The link's SqliteQueue stores that cursor in the same
transaction as the records, so a restart continues exactly where the last stored pull ended:
nothing is read twice and nothing is skipped. The second run builds a brand-new inlet and
link on the same queue file, as a restarted process would.

Run::

    python examples/incremental_cursor.py                # 2 transfers per run, temp file
    python examples/incremental_cursor.py --transfers 3 --path /tmp/changes.db

Prints one line per transfer and the stored cursor after each run, e.g.::

    run 1: cursor None -> read changes 1..4
    run 1: cursor 4 -> read changes 5..8
    run 1 ended; stored cursor: 8
    run 2: cursor 8 -> read changes 9..12
    ...
    every change was delivered exactly once
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import SqliteQueue

__all__ = ["main"]

CHANGES = [(n, f"change {n}") for n in range(1, 101)]


class ChangesInlet(Inlet):
    """Up to ``page`` changes after the committed cursor (the id of the last change read)."""

    def __init__(self, run: int, page: int = 4) -> None:
        super().__init__(name="changes")
        self.run, self.page = run, page

    def pull(self, update: Update) -> list[dict[str, object]]:
        last = update.cursor  # None on the very first pull
        found = [(n, text) for n, text in CHANGES if last is None or n > last][: self.page]
        if found:
            update.commit_cursor(found[-1][0])  # stored with these records, atomically
            print(f"run {self.run}: cursor {last} -> read changes {found[0][0]}..{found[-1][0]}")
        return [{"id": n, "text": text} for n, text in found]


class Collector(Outlet):
    """Keeps the ids it receives."""

    def __init__(self) -> None:
        super().__init__(name="collector")
        self.ids: list[object] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.ids.extend(record.payload["id"] for record in records)


def run(path: Path, number: int, transfers: int, collector: Collector) -> None:
    queue = SqliteQueue(path)
    link = Link(ChangesInlet(number), collector, 60, tags="changes", queue=queue)
    for _ in range(transfers):
        link.transfer()
    stored = queue.cursor("changes", "changes")
    print(f"run {number} ended; stored cursor: {None if stored is None else stored.value}")
    queue.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Incremental pulls with a durable cursor.")
    parser.add_argument("--transfers", type=int, default=2, help="transfers per run")
    parser.add_argument("--path", default=None, help="queue file (default: a temp file)")
    args = parser.parse_args(argv)
    logging.getLogger("databay_bus").setLevel(logging.ERROR)
    collector = Collector()
    with tempfile.TemporaryDirectory() as temp:
        path = Path(args.path) if args.path else Path(temp) / "changes.db"
        run(path, 1, args.transfers, collector)
        run(path, 2, args.transfers, collector)  # a restart: new inlet, new link, same file
    expected = list(range(1, len(collector.ids) + 1))
    if collector.ids == expected:
        print("every change was delivered exactly once")
    else:
        print(f"unexpected ids: {collector.ids}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
