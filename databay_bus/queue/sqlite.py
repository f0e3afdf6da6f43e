"""SqliteQueue: the embedded, durable RecordQueue (one SQLite file, WAL, fsync on commit).

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so every commit is fsynced
before it returns; each write is one ``BEGIN IMMEDIATE`` transaction (it takes the write
lock up front, so it never fails half-way on a lock upgrade and WAL readers keep reading).

Threads: each thread gets its own connection, so reads (``due``, ``stats``) run side by
side; writes are serialised by one in-process lock before SQLite's own lock, which hands
the file from one writer to the next at once instead of through SQLite's sleeping busy
handler (measured in benchmarks/queue_throughput.py).

Processes: one process at a time. Opening a file that another process (or another
SqliteQueue of this process) holds raises :class:`~databay_bus.errors.QueueLockedError`;
the lock is an advisory ``flock`` on ``<path>.lock`` that the kernel releases when its
holder dies, even by SIGKILL, so a restarted process opens the file at once. Two
processes delivering the same file would hand the same due records to both, which breaks
the promise that a duplicate only comes from a batch in flight at a crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

from databay_bus._clock import Clock
from databay_bus.errors import ConfigurationError, QueueError, QueueLockedError, describe
from databay_bus.queue._schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from databay_bus.queue.base import (
    DeliveryState,
    EncodedRecord,
    OutletStats,
    RecordQueue,
    StoredRecord,
    new_queue_id,
)
from databay_bus.records.codecs import Codec

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["SqliteQueue"]

_LOGGER = logging.getLogger(__name__)

_PENDING = DeliveryState.PENDING.value
_FAILED = DeliveryState.FAILED.value
_DELIVERED = DeliveryState.DELIVERED.value
_DEAD = DeliveryState.DEAD.value

_CHUNK = 500  # ids per IN (...) list


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Distinct ``numbers`` as runs of consecutive values: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _marks(count: int) -> str:
    return ",".join("?" * count)


class SqliteQueue(RecordQueue):
    """A durable record queue in one SQLite file.

    Args:
        path: the database file (created with its tables if missing).
        busy_timeout: seconds a write waits for SQLite's lock before failing.
        codec, clock, retention, purge_interval: as for
            :class:`~databay_bus.queue.RecordQueue`.

    Raises:
        QueueLockedError: another process (or SqliteQueue) has the file open.
        QueueError: the file was written by a newer databay_bus, or is not a queue.
        ConfigurationError: ``':memory:'`` (use MemoryQueue) or a bad argument.
    """

    #: One connection per thread (True) or one shared connection behind the lock (False).
    _per_thread = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        codec: Codec | None = None,
        clock: Clock | None = None,
        retention: float | timedelta | None = 86400.0,
        purge_interval: float | timedelta | None = 60.0,
    ) -> None:
        super().__init__(
            codec=codec, clock=clock, retention=retention, purge_interval=purge_interval
        )
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise ConfigurationError(
                f"SqliteQueue: path must be a file path, got {describe(path)}; "
                f"use MemoryQueue for a queue in memory"
            )
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise ConfigurationError(
                f"SqliteQueue: busy_timeout must be seconds, got {describe(busy_timeout)}"
            )
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = {}
        self._connections_lock = threading.Lock()
        self._closed = False
        self._lock_fd = self._take_file_lock()
        try:
            self._id = self._prepare()
        except BaseException:
            self._do_close()
            raise

    @property
    def queue_id(self) -> str:
        return self._id

    # -- connections and transactions ------------------------------------------------------

    def _take_file_lock(self) -> int | None:
        if fcntl is None:  # pragma: no cover
            return None
        lock_path = f"{self.path}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            finally:
                os.close(fd)
            raise QueueLockedError(
                f"SqliteQueue: {str(self.path)!r} is in use by process {holder} (lock file "
                f"{lock_path!r}); one process at a time may open a queue file, and within "
                f"a process links share one SqliteQueue instance"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        return fd

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
        )
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise QueueError(f"SqliteQueue: {str(self.path)!r} is not a queue file: {exc}") from exc
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise QueueError(f"{self!r} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        thread = threading.current_thread()
        with self._connections_lock:
            if not self._per_thread and self._connections:
                conn = next(iter(self._connections.values()))[1]
            else:
                for key, (ref, old) in list(self._connections.items()):
                    if ref() is None or not ref().is_alive():  # type: ignore[union-attr]
                        old.close()  # its thread has ended
                        del self._connections[key]
                conn = self._connect()
                self._connections[id(conn)] = (weakref.ref(thread), conn)
        self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT (fsynced), or ROLLBACK."""
        conn = self._conn()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (one snapshot) on this thread's connection."""
        conn = self._conn()
        guard = contextlib.nullcontext() if self._per_thread else self._lock
        with guard:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _prepare(self) -> str:
        conn = self._conn()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise QueueError(f"SqliteQueue: {str(self.path)!r} is not a queue file: {exc}") from exc
        if str(mode).lower() != "wal":
            raise QueueError(f"SqliteQueue: {str(self.path)!r} cannot use WAL (got {mode!r})")
        with self._write() as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "schema_version" not in tables:
                if tables - {"sqlite_sequence"}:
                    raise QueueError(
                        f"SqliteQueue: {str(self.path)!r} holds other tables {sorted(tables)}; "
                        f"it is not a databay_bus queue file"
                    )
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                conn.execute("INSERT INTO meta VALUES ('queue_id', ?)", (new_queue_id(),))
                _LOGGER.info("Created queue file %s", self.path)
            version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise QueueError(
                    f"SqliteQueue: {str(self.path)!r} has schema version {version}, newer than "
                    f"this databay_bus supports ({SCHEMA_VERSION}); upgrade databay_bus"
                )
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version += 1
                conn.execute("UPDATE schema_version SET version = ?", (version,))
            found = conn.execute("SELECT value FROM meta WHERE key='queue_id'").fetchone()
            queue_id: str = found[0]
        return queue_id

    # -- the delivery cycle -----------------------------------------------------------------

    def _do_enqueue(self, link: str, rows: Sequence[EncodedRecord], now: float) -> list[int]:
        with self._write() as conn:
            found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='records'").fetchone()
            first = (found[0] if found else 0) + 1
            numbers = list(range(first, first + len(rows)))
            conn.executemany(
                "INSERT INTO records (id, link, codec, data, enqueued_at) VALUES (?,?,?,?,?)",
                [(n, link, row.codec, row.data, now) for n, row in zip(numbers, rows, strict=True)],
            )
            by_outlet: dict[str, list[int]] = {}
            for number, row in zip(numbers, rows, strict=True):
                for outlet in row.targets:
                    by_outlet.setdefault(outlet, []).append(number)
            for outlet, targeted in by_outlet.items():
                # Usually every record goes to every outlet: one INSERT ... SELECT per run
                # of consecutive numbers instead of one statement per delivery.
                conn.executemany(
                    "INSERT INTO deliveries (record_id, outlet, link, state, due_at, updated_at) "
                    f"SELECT id, ?, link, {_PENDING}, ?, ? FROM records WHERE id BETWEEN ? AND ?",
                    [(outlet, now, now, first, last) for first, last in _runs(targeted)],
                )
        return numbers

    def _do_due(self, link: str, outlet: str, limit: int, now: float) -> list[StoredRecord]:
        # One statement is one snapshot already: no BEGIN/COMMIT round trip needed.
        with self._lock if not self._per_thread else contextlib.nullcontext():
            rows = (
                self._conn()
                .execute(
                    "SELECT r.id, r.codec, r.data FROM deliveries d JOIN records r "
                    "ON r.id = d.record_id WHERE d.link = ? AND d.outlet = ? AND d.state < 2 "
                    "AND d.due_at <= ? ORDER BY d.record_id LIMIT ?",
                    (link, outlet, now, limit),
                )
                .fetchall()
            )
        return [StoredRecord(*row) for row in rows]

    def _do_ack(self, link: str, outlet: str, numbers: list[int], now: float) -> int:
        with self._write() as conn:
            # A batch is usually one run of consecutive numbers: one range update.
            cursor = conn.executemany(
                f"UPDATE deliveries SET state = {_DELIVERED}, updated_at = ? "
                "WHERE link = ? AND outlet = ? AND state < 2 AND record_id BETWEEN ? AND ?",
                [(now, link, outlet, first, last) for first, last in _runs(numbers)],
            )
            return cursor.rowcount

    def _do_fail(
        self,
        link: str,
        outlet: str,
        numbers: list[int],
        error: str,
        now: float,
        next_delay: Callable[[int], float | None],
    ) -> tuple[int, int]:
        retry: list[tuple[int, float, str, float, int, str]] = []
        dead: list[tuple[int, str, float, int, str]] = []
        with self._write() as conn:
            for chunk in _chunks(numbers):
                rows = conn.execute(
                    "SELECT record_id, attempts FROM deliveries WHERE link = ? AND outlet = ? "
                    f"AND state < 2 AND record_id IN ({_marks(len(chunk))})",
                    (link, outlet, *chunk),
                ).fetchall()
                for number, attempts in rows:
                    delay = next_delay(attempts + 1)
                    if delay is None:
                        dead.append((attempts + 1, error, now, number, outlet))
                    else:
                        retry.append((attempts + 1, now + delay, error, now, number, outlet))
            conn.executemany(
                f"UPDATE deliveries SET state = {_FAILED}, attempts = ?, due_at = ?, "
                "last_error = ?, updated_at = ? WHERE record_id = ? AND outlet = ?",
                retry,
            )
            conn.executemany(
                f"UPDATE deliveries SET state = {_DEAD}, attempts = ?, last_error = ?, "
                "updated_at = ? WHERE record_id = ? AND outlet = ?",
                dead,
            )
        return len(retry), len(dead)

    def _do_waiting(self, link: str) -> int:
        with self._read() as conn:
            count: int = conn.execute(
                "SELECT COUNT(DISTINCT record_id) FROM deliveries WHERE link = ? AND state < 2",
                (link,),
            ).fetchone()[0]
        return count

    def _do_waiting_outlets(self, link: str) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT outlet FROM deliveries WHERE link = ? AND state < 2", (link,)
            ).fetchall()
        return [row[0] for row in rows]

    # -- operations -------------------------------------------------------------------------

    def _do_stats(self, now: float) -> tuple[list[OutletStats], int]:
        with self._read() as conn:
            counts: dict[tuple[str, str], dict[int, int]] = {}
            for link, outlet, state, count in conn.execute(
                "SELECT link, outlet, state, COUNT(*) FROM deliveries GROUP BY link, outlet, state"
            ):
                counts.setdefault((link, outlet), {})[state] = count
            oldest = {
                (link, outlet): enqueued
                for link, outlet, enqueued in conn.execute(
                    "SELECT w.link, w.outlet, r.enqueued_at FROM (SELECT link, outlet, "
                    "MIN(record_id) AS first FROM deliveries WHERE state < 2 "
                    "GROUP BY link, outlet) w JOIN records r ON r.id = w.first"
                )
            }
            records: int = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        stats = []
        for (link, outlet), by_state in counts.items():
            enqueued = oldest.get((link, outlet))
            stats.append(
                OutletStats(
                    link,
                    outlet,
                    by_state.get(_PENDING, 0) + by_state.get(_FAILED, 0),
                    by_state.get(_FAILED, 0),
                    by_state.get(_DELIVERED, 0),
                    by_state.get(_DEAD, 0),
                    None if enqueued is None else max(0.0, now - enqueued),
                )
            )
        return stats, records

    @staticmethod
    def _filters(
        link: str | None, outlet: str | None, numbers: Sequence[int] | None
    ) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        if link is not None:
            clauses.append("d.link = ?")
            args.append(link)
        if outlet is not None:
            clauses.append("d.outlet = ?")
            args.append(outlet)
        if numbers is not None:
            clauses.append(f"d.record_id IN ({_marks(len(numbers))})")
            args.extend(numbers)
        return "".join(f" AND {c}" for c in clauses), args

    def _do_dead_letters(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, str | None, float]]:
        where, args = self._filters(link, outlet, None)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT r.id, r.codec, r.data, d.link, d.outlet, d.attempts, d.last_error, "
                "d.updated_at FROM deliveries d JOIN records r ON r.id = d.record_id "
                f"WHERE d.state = {_DEAD}{where} ORDER BY d.record_id, d.outlet LIMIT ?",
                (*args, -1 if limit is None else limit),
            ).fetchall()
        return [tuple(row) for row in rows]

    def _do_replay(
        self, link: str | None, outlet: str | None, numbers: list[int] | None, now: float
    ) -> int:
        total = 0
        with self._write() as conn:
            for chunk in [None] if numbers is None else list(_chunks(numbers)):
                where, args = self._filters(link, outlet, chunk)
                cursor = conn.execute(
                    f"UPDATE deliveries AS d SET state = {_PENDING}, attempts = 0, due_at = ?, "
                    f"updated_at = ? WHERE d.state = {_DEAD}{where}",
                    (now, now, *args),
                )
                total += cursor.rowcount
        return total

    def _do_drop(
        self,
        link: str | None,
        outlet: str | None,
        numbers: list[int] | None,
        states: frozenset[int],
    ) -> int:
        if not states:
            return 0
        total = 0
        with self._write() as conn:
            for chunk in [None] if numbers is None else list(_chunks(numbers)):
                where, args = self._filters(link, outlet, chunk)
                selected = f"d.state IN ({_marks(len(states))}){where}"
                affected = [
                    row[0]
                    for row in conn.execute(
                        f"SELECT DISTINCT d.record_id FROM deliveries d WHERE {selected}",
                        (*sorted(states), *args),
                    )
                ]
                cursor = conn.execute(
                    f"DELETE FROM deliveries AS d WHERE {selected}", (*sorted(states), *args)
                )
                total += cursor.rowcount
                self._delete_orphans(conn, affected)
        return total

    @staticmethod
    def _delete_orphans(conn: sqlite3.Connection, numbers: Sequence[int]) -> None:
        for chunk in _chunks(numbers):
            conn.execute(
                f"DELETE FROM records WHERE id IN ({_marks(len(chunk))}) AND NOT EXISTS "
                "(SELECT 1 FROM deliveries WHERE record_id = records.id)",
                tuple(chunk),
            )

    def _do_purge(self, before: float) -> int:
        """Delete in chunks of 1000, each its own short transaction, so transfers go on."""
        total = 0
        while not self._closed:
            with self._write() as conn:
                rows = conn.execute(
                    f"SELECT record_id, outlet FROM deliveries WHERE state = {_DELIVERED} "
                    "AND updated_at < ? LIMIT 1000",
                    (before,),
                ).fetchall()
                conn.executemany("DELETE FROM deliveries WHERE record_id = ? AND outlet = ?", rows)
                self._delete_orphans(conn, sorted({row[0] for row in rows}))
            total += len(rows)
            if len(rows) < 1000:
                break
        return total

    def integrity_check(self) -> str:
        """Run SQLite's ``PRAGMA integrity_check``; ``'ok'`` when the file is sound."""
        with self._read() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    def _do_close(self) -> None:
        with self._connections_lock:
            self._closed = True
            for _, conn in self._connections.values():
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __repr__(self) -> str:
        return f"SqliteQueue({str(self.path)!r})"
