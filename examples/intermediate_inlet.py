"""Intermediate inlet: an incremental reader of a SQLite table, with its own lifecycle.

Shows: configuration through the constructor (not metadata); opening a resource in
``on_start`` and closing it in ``on_shutdown``; state kept between pulls (the last row id
read); returning several records with per-record metadata via ``new_record``.
The example creates the database itself and adds rows while the planner runs.
Run: ``python examples/intermediate_inlet.py --transfers 4 --interval 1``
Prints ``opened orders.db``, then the new rows of every transfer
(``orders.1 order 3: 2 x tea (table=orders)``), then ``closed orders.db``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from databay_bus import Inlet, Link, Record, Update
from databay_bus.outlets import PrintOutlet
from databay_bus.planners import ApsPlanner


class NewRowsInlet(Inlet):
    """Pulls the rows added to ``table`` since the previous pull."""

    def __init__(self, database: Path, table: str) -> None:
        super().__init__(metadata={"source": "sqlite"})
        self.database = database
        self.table = table
        self._connection: sqlite3.Connection | None = None
        self._last_id = 0

    def on_start(self) -> None:
        self._connection = sqlite3.connect(self.database, check_same_thread=False)
        print(f"opened {self.database.name}", flush=True)

    def on_shutdown(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        print(f"closed {self.database.name}", flush=True)

    def pull(self, update: Update) -> list[Record]:
        assert self._connection is not None, "pull() before on_start()"
        rows = self._connection.execute(
            f"SELECT id, item, quantity FROM {self.table} WHERE id > ? ORDER BY id",
            (self._last_id,),
        ).fetchall()
        if rows:
            self._last_id = rows[-1][0]
        return [
            self.new_record({"id": id_, "item": item, "quantity": quantity}, {"table": self.table})
            for id_, item, quantity in rows
        ]


def describe(records: list[Record]) -> list[Record]:
    """A link processor that turns each row into a readable sentence."""
    for record in records:
        row, table = record.payload, record.metadata["table"]
        record.payload = f"order {row['id']}: {row['quantity']} x {row['item']} (table={table})"
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "orders.db"
        with sqlite3.connect(database) as setup:
            setup.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, quantity INT)")
            setup.executemany(
                "INSERT INTO orders (item, quantity) VALUES (?, ?)", [("coffee", 1), ("cake", 2)]
            )
        setup.close()
        inlet = NewRowsInlet(database, "orders")
        link = Link(
            inlet, PrintOutlet(only_payload=True), args.interval, tags="orders", processors=describe
        )
        planner = ApsPlanner(link)
        planner.start(block=False)
        seen = 0
        items = ["tea", "juice", "scone", "soup"]
        while planner.running and link.transfer_number + 1 < args.transfers:
            if link.transfer_number >= seen:  # one new order after every transfer
                seen = link.transfer_number + 1
                with sqlite3.connect(database) as writer:
                    item = items[seen % len(items)]
                    writer.execute("INSERT INTO orders (item, quantity) VALUES (?, 2)", (item,))
                writer.close()
            time.sleep(0.01)
        planner.shutdown()


if __name__ == "__main__":
    main()
