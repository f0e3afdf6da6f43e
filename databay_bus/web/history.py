"""Run history: one entry per transfer (when, how long, counts, error), kept for a life span.

With a :class:`~databay_bus.queue.PostgresQueue` the entries go to a ``web_history`` table in
the queue's schema, through the queue's own connections, so that an interface on any host shows
the transfers of every process sharing the pipeline (each entry names its process). With a
:class:`~databay_bus.queue.SqliteQueue` they go to a ``web_history`` table in the queue's own
file (its own connection, WAL, so a running queue is never blocked for long); with any other
queue, or none, they stay in memory. Entries older than ``life_span`` seconds are
removed as new ones arrive (Databus's ``log_life_span``). Writes happen on the planner's
observer thread, never in a transfer.
"""

from __future__ import annotations

import abc
import collections
import json
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from databay_bus._clock import Clock, SystemClock
from databay_bus.observers import Event, Observer, TransferCompleted, TransferFailed

__all__ = [
    "HistoryObserver",
    "MemoryHistory",
    "PostgresHistory",
    "RunEntry",
    "RunHistory",
    "SqliteHistory",
    "history_for",
    "link_label",
    "process_name",
]

_LOGGER = logging.getLogger(__name__)

#: How often (in entries added) old entries are pruned.
_PRUNE_EVERY = 100


def process_name() -> str:
    """This process as history entries name it: ``'host:pid'`` (several hosts may share a DB)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class RunEntry:
    """One finished transfer of a link."""

    link: str
    number: int
    finished_at: float
    duration: float
    pulled: int
    pushed: dict[str, int] = field(default_factory=dict)
    failed: bool = False
    error: str | None = None
    process: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


class RunHistory(abc.ABC):
    """Where run entries are kept; safe to use from several threads.

    Args:
        life_span: seconds an entry is kept; None keeps entries until ``max_entries``.
        max_entries: at most this many entries are kept in memory (a bound, whatever the span).
        clock: time source.
    """

    def __init__(
        self,
        life_span: float | None = 7 * 86400.0,
        max_entries: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        self.life_span = life_span
        self.max_entries = max_entries
        self.clock: Clock = clock or SystemClock()
        self._added = 0
        #: How this process's entries name it (a PostgresQueue's node name when shared).
        self.process = process_name()

    def add(self, entry: RunEntry) -> None:
        """Store ``entry``; now and then remove entries past the life span."""
        self._add(entry)
        self._added += 1
        if self._added % _PRUNE_EVERY == 1:
            self.prune()

    def prune(self) -> int:
        """Remove entries older than the life span; returns how many."""
        if self.life_span is None:
            return 0
        return self._prune(self.clock.time() - self.life_span)

    @abc.abstractmethod
    def _add(self, entry: RunEntry) -> None: ...

    @abc.abstractmethod
    def _prune(self, before: float) -> int: ...

    @abc.abstractmethod
    def set_error(self, link: str, number: int, error: str) -> None:
        """Attach the error of a failed transfer to its entry."""

    @abc.abstractmethod
    def recent(self, link: str | None = None, limit: int = 100) -> list[RunEntry]:
        """Entries newest first, optionally of one link."""

    def close(self) -> None:  # noqa: B027 - most histories hold nothing to release
        """Release resources."""


class MemoryHistory(RunHistory):
    """Run history in memory (lost on restart)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._entries: collections.deque[RunEntry] = collections.deque(maxlen=self.max_entries)
        self._lock = threading.Lock()

    def _add(self, entry: RunEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def _prune(self, before: float) -> int:
        with self._lock:
            removed = 0
            while self._entries and self._entries[0].finished_at < before:
                self._entries.popleft()
                removed += 1
            return removed

    def set_error(self, link: str, number: int, error: str) -> None:
        with self._lock:
            for entry in reversed(self._entries):
                if entry.link == link and entry.number == number:
                    entry.error = error
                    return

    def recent(self, link: str | None = None, limit: int = 100) -> list[RunEntry]:
        with self._lock:
            found = []
            for entry in reversed(self._entries):
                if link is None or entry.link == link:
                    found.append(entry)
                    if len(found) >= limit:
                        break
            return found


_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_history (
    link TEXT NOT NULL,
    number INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    duration REAL NOT NULL,
    pulled INTEGER NOT NULL,
    pushed TEXT NOT NULL,
    failed INTEGER NOT NULL,
    error TEXT,
    process TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_history_by_time ON web_history (finished_at);
CREATE INDEX IF NOT EXISTS web_history_by_link ON web_history (link, finished_at);
"""


class SqliteHistory(RunHistory):
    """Run history in a ``web_history`` table of an SQLite file (a queue's file).

    Args:
        path: the database file (it must exist: the queue created it).
    """

    def __init__(self, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(self.path), timeout=10.0, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.executescript(_SCHEMA)

    def _add(self, entry: RunEntry) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO web_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _to_row(entry)
            )

    def _prune(self, before: float) -> int:
        with self._lock:
            cursor = self._conn.execute("DELETE FROM web_history WHERE finished_at < ?", (before,))
            return cursor.rowcount

    def set_error(self, link: str, number: int, error: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE web_history SET error = ? WHERE rowid = "
                "(SELECT max(rowid) FROM web_history WHERE link = ? AND number = ?)",
                (error, link, number),
            )

    def recent(self, link: str | None = None, limit: int = 100) -> list[RunEntry]:
        query = "SELECT * FROM web_history"
        args: list[Any] = []
        if link is not None:
            query += " WHERE link = ?"
            args.append(link)
        query += " ORDER BY finished_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(query, args).fetchall()
        return [_from_row(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS {s}.web_history (
    link text NOT NULL,
    number bigint NOT NULL,
    finished_at double precision NOT NULL,
    duration double precision NOT NULL,
    pulled bigint NOT NULL,
    pushed text NOT NULL,
    failed boolean NOT NULL,
    error text,
    process text NOT NULL
);
CREATE INDEX IF NOT EXISTS web_history_by_time ON {s}.web_history (finished_at);
CREATE INDEX IF NOT EXISTS web_history_by_link ON {s}.web_history (link, finished_at)
"""


class PostgresHistory(RunHistory):
    """Run history in a ``web_history`` table of a PostgresQueue's schema, shared by every
    process (and host) using that queue.

    Args:
        queue: the PostgresQueue; its connections (and reconnects) are used.
    """

    def __init__(self, queue: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = queue
        self.process = str(getattr(queue, "node", self.process))
        self._table = ".".join(['"' + str(queue.schema).replace('"', '""') + '"', "web_history"])
        schema = self._table.rsplit(".", 1)[0]
        statements = [part.strip() for part in _PG_SCHEMA.format(s=schema).split(";")]

        def create(conn: Any) -> None:
            for statement in statements:
                if statement:
                    conn.execute(statement.encode())

        queue._run(create)

    def _add(self, entry: RunEntry) -> None:
        row = _to_row(entry)
        sql = f"INSERT INTO {self._table} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        self.queue._run(lambda conn: conn.execute(sql.encode(), row))

    def _prune(self, before: float) -> int:
        sql = f"DELETE FROM {self._table} WHERE finished_at < %s"
        count: int = self.queue._run(lambda conn: conn.execute(sql.encode(), [before]).rowcount)
        return count

    def set_error(self, link: str, number: int, error: str) -> None:
        sql = (
            f"UPDATE {self._table} SET error = %s WHERE ctid = (SELECT ctid FROM {self._table} "
            f"WHERE link = %s AND number = %s AND process = %s ORDER BY finished_at DESC LIMIT 1)"
        )
        args = [error, link, number, self.process]
        self.queue._run(lambda conn: conn.execute(sql.encode(), args))

    def recent(self, link: str | None = None, limit: int = 100) -> list[RunEntry]:
        sql = f"SELECT * FROM {self._table}"
        args: list[Any] = []
        if link is not None:
            sql += " WHERE link = %s"
            args.append(link)
        sql += " ORDER BY finished_at DESC LIMIT %s"
        args.append(limit)
        rows = self.queue._run(lambda conn: conn.execute(sql.encode(), args).fetchall())
        return [_from_row(r) for r in rows]


def _to_row(entry: RunEntry) -> tuple[Any, ...]:
    """``entry`` as the columns of a history table (``pushed`` as JSON text)."""
    return (
        entry.link,
        entry.number,
        entry.finished_at,
        entry.duration,
        entry.pulled,
        json.dumps(entry.pushed),
        entry.failed,  # SQLite stores a bool as 0 or 1; PostgreSQL as boolean
        entry.error,
        entry.process,
    )


def _from_row(row: Sequence[Any]) -> RunEntry:
    """The entry :func:`_to_row` stored."""
    fields = list(row)
    fields[5], fields[6] = json.loads(fields[5]), bool(fields[6])
    return RunEntry(*fields)


def history_for(
    queues: Sequence[Any], life_span: float | None, clock: Clock | None = None
) -> RunHistory:
    """A history in the database of the first PostgreSQL queue among ``queues`` (shared by
    every process), else in the first SQLite queue's file, else in memory."""
    for queue in queues:
        if type(queue).__name__ == "PostgresQueue":
            try:
                return PostgresHistory(queue, life_span=life_span, clock=clock)
            except Exception as exc:
                _LOGGER.warning("run history cannot use %r (%s); keeping it elsewhere", queue, exc)
    for queue in queues:
        path = getattr(queue, "path", None)
        if type(queue).__name__ == "SqliteQueue" and path is not None and Path(path).exists():
            try:
                return SqliteHistory(path, life_span=life_span, clock=clock)
            except sqlite3.Error as exc:
                _LOGGER.warning("run history cannot use %s (%s); keeping it in memory", path, exc)
    return MemoryHistory(life_span=life_span, clock=clock)


def link_label(link: Any) -> str:
    """How pages and history name a link: its tags joined by dots, or its repr."""
    tags = getattr(link, "tags", None)
    return ".".join(tags) if tags else repr(link)


class HistoryObserver(Observer):
    """Feeds a planner's transfers into a :class:`RunHistory`."""

    def __init__(self, history: RunHistory) -> None:
        self.history = history
        self.process = history.process

    def notify(self, event: Event) -> None:
        if isinstance(event, TransferCompleted):
            self.history.add(
                RunEntry(
                    link_label(event.link),
                    event.update.transfer_number,
                    event.at,
                    event.duration,
                    event.pulled,
                    dict(event.pushed),
                    event.failed,
                    None,
                    self.process,
                )
            )
        elif isinstance(event, TransferFailed):
            error = f"{type(event.exception).__name__}: {event.exception}"
            self.history.set_error(
                link_label(event.link), event.update.transfer_number, error[:2000]
            )
