"""A process to kill: a queued link from an AmqpInlet to a file (test_amqp_crash.py).

:func:`work` takes messages ``{"id": ...}`` from an AMQP queue into a SqliteQueue in DIR and
appends each delivered id to ``DIR/out.txt`` (one fsynced write per batch), counting transfers
in a ``multiprocessing.Value``, until killed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from databay_bus import Link, Outlet, Record, Update
from databay_bus.inlets import AmqpInlet
from databay_bus.queue import RetryPolicy, SqliteQueue

__all__ = ["FileLines", "link_for", "work"]


class FileLines(Outlet):
    """Appends each record's ``payload['id']`` as a line, fsynced once per batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="file")
        self.path = path

    def push(self, records: list[Record], update: Update) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write("".join(f"{r.payload['id']}\n" for r in records))
            file.flush()
            os.fsync(file.fileno())


def link_for(directory: Path, url: str, queue_name: str) -> tuple[Link, SqliteQueue]:
    queue = SqliteQueue(directory / "queue.db")
    link = Link(
        AmqpInlet(queue_name, url=url, count=7, name="amqp"),
        FileLines(directory / "out.txt"),
        60,
        tags="amqp",
        queue=queue,
        retry=RetryPolicy(max_attempts=None, initial_delay=0),
    )
    return link, queue


def work(directory: str, url: str, queue_name: str, transfers: Any) -> None:
    logging.disable(logging.CRITICAL)
    link, _ = link_for(Path(directory), url, queue_name)
    link.on_start()
    while True:
        link.transfer()
        with transfers.get_lock():
            transfers.value += 1
