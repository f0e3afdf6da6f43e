"""SqliteQueue: the embedded, durable RecordQueue (one SQLite file, WAL, fsync on commit).

Durability: ``journal_mode=WAL``; each write is one ``BEGIN IMMEDIATE`` transaction (it
takes the write lock up front, so it never fails half-way on a lock upgrade and WAL readers
keep reading). What each commit promises:

* **enqueue** commits with ``synchronous=FULL``: the WAL is fsynced before ``enqueue``
  returns, so a record is on disk before any outlet sees it and survives a process crash,
  a power loss or an OS crash.
* **ack** and **fail** (the delivery cycle's state changes) commit with
  ``synchronous=NORMAL`` by default (``ack_sync="normal"``): the commit is in the WAL file
  before the call returns, so it survives a process crash (SIGKILL), but it is fsynced only
  by the next FULL commit (the next enqueue, or the first ack/fail more than one second
  after the oldest unsynced one), by a checkpoint, or when the queue is closed (an idle
  queue keeps its last ones unsynced until then). The WAL keeps commits in order, so a
  power loss or OS crash can only roll back the acks and fails since the last FULL
  commit: their batches are **delivered again** (the outlet sees a duplicate, as with a
  crash between push and ack) and a lost fail gives one more attempt; **no record is ever
  lost**, because the records themselves were fsynced by their enqueue. This saves one
  fsync per transfer. ``ack_sync="full"`` fsyncs every ack and fail too (about half the
  transfers per second at one record per transfer). One exception: an ack of exactly the
  batch ``due`` handed out (its outcome is known) that arrives while another thread commits
  is *posted* to the next commit and returns at once; a crash before that commit delivers
  its batch again, as a crash between push and ack does. ``due`` of its link, reads and
  ``close`` wait for posted acks. docs/queue.md says the same for users.
* Everything else (replay, drop, purge, schema changes) commits with FULL.

Storage (see ``_schema.py``): the records of one enqueue are one ``chunks`` row, and the
delivery state of a run of consecutive records for one outlet is one span row (``waiting``
or ``settled``), split when part of it changes. So a transfer of 1000 records writes a
handful of rows, not thousands, and each record still has its own state, attempts and
retry time. Numbers come from memory (this process is the file's only writer).

Threads: each thread gets its own connection, so reads (``due``, ``stats``) run side by
side; writes are serialised by one in-process lock before SQLite's own lock, which hands
the file from one writer to the next at once instead of through SQLite's sleeping busy
handler (4 links on 4 threads: benchmarks/queue_throughput.py), and all go through one
writer connection, whose page cache stays valid between writes. Enqueues and acks that
arrive while a write commits share the next transaction (``_group_commit.py``), which
writes their rows with a few multi-row statements (``_Rows``). As the only
writer, the queue knows what waits for an outlet right after an enqueue when nothing else
did (``_known``): its ``due`` then reads nothing.

Processes: one process at a time delivers. Opening a file that another process (or another
SqliteQueue of this process) holds raises :class:`~databay_bus.errors.QueueLockedError`.
The lock is taken with the ``filelock`` package on ``<real path>.lock``, beside the file the
path resolves to (so a symlink finds the same lock; a hard-linked file is refused, as SQLite
finds its ``-wal`` by name): ``flock`` on POSIX and ``LockFileEx`` on Windows, released by
the OS when the holder dies, even by SIGKILL, so a restarted process opens the file at once;
where neither exists filelock falls back to a lock file that only a clean close removes. Two
processes delivering the same file would hand the same due records to both, which breaks
the promise that a duplicate only comes from a batch in flight at a crash.

``read_only=True`` opens for inspection beside the running writer (WAL lets readers read
while it writes): no lock, nothing created, ``mode=ro`` and ``PRAGMA query_only``.

Storage failures (disk full, a read-only file or directory, a damaged file, ...) raise
:class:`~databay_bus.errors.QueueStorageError` subclasses naming the file and the cause. A
file up to 64 MiB gets ``PRAGMA quick_check`` on open (a few ms per MiB); a larger one is
not read whole at open, and damage found later marks the queue corrupt: it then refuses new
records (``QueueCorruptError``) instead of writing them into a damaged file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import math
import operator
import os
import socket
import sqlite3
import sys
import threading
import weakref
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import filelock

from databay_bus._clock import Clock
from databay_bus.errors import (
    ConfigurationError,
    QueueCorruptError,
    QueueError,
    QueueFullError,
    QueueLockedError,
    QueuePermissionError,
    QueueReadOnlyError,
    QueueStorageError,
    describe,
)
from databay_bus.queue._group_commit import GroupCommit, Job
from databay_bus.queue._schema import CURSORS, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from databay_bus.queue.base import (
    DeliveryState,
    OutletStats,
    RecordQueue,
    StoredRecord,
    StoredRun,
    new_queue_id,
)
from databay_bus.queue.cursors import CursorWrite, check_version
from databay_bus.records.codecs import Codec

__all__ = ["SqliteQueue"]

_LOGGER = logging.getLogger(__name__)

_PENDING = DeliveryState.PENDING.value
_FAILED = DeliveryState.FAILED.value
_DELIVERED = DeliveryState.DELIVERED.value
_DEAD = DeliveryState.DEAD.value

_CHUNK_RECORDS = 1000  # records per chunk row at most
_CHUNK_BYTES = 1 << 20  # data bytes per chunk row at most (unless one record is bigger)
_SYNC_WINDOW = 1.0  # seconds an unsynced (NORMAL) ack/fail commit may wait for an fsync
_PURGE_SPANS = 1000  # spans deleted per purge transaction

_ACK_SYNC = ("normal", "full")
_QUICK_CHECK_BYTES = 64 << 20  # files up to this size get PRAGMA quick_check on open
_SQLITE_IOERR = 10

_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if code
)

# SQLite's primary result codes -> the error that names them.
_SQLITE_ERRORS: dict[int, tuple[type[QueueStorageError], str]] = {
    3: (QueuePermissionError, "permission denied"),  # SQLITE_PERM
    5: (QueueStorageError, "the file stayed locked past busy_timeout"),  # SQLITE_BUSY
    6: (QueueStorageError, "the file stayed locked past busy_timeout"),  # SQLITE_LOCKED
    8: (QueuePermissionError, "the file, its directory or its disk is read-only"),  # READONLY
    10: (QueueStorageError, "disk I/O error (a full disk or a file size limit can cause it)"),
    11: (QueueCorruptError, "the file is damaged and accepts no new records"),  # CORRUPT
    13: (QueueFullError, "disk full or file size limit reached"),  # SQLITE_FULL
    14: (QueueStorageError, "cannot open the file or its -wal/-shm"),  # SQLITE_CANTOPEN
    23: (QueuePermissionError, "not authorised"),  # SQLITE_AUTH
    26: (QueueCorruptError, "not a queue file, or damaged"),  # SQLITE_NOTADB
}

# Chunk sizes are stored as little-endian uint32.
_SIZE_CODE = next(code for code in ("I", "L") if array(code).itemsize == 4)
_SWAP = sys.byteorder != "little"

# The columns of a span, in _Span's order; both span tables have them.
_SPAN = "link, outlet, first, last, state, attempts, due_at, updated_at, last_error"
# One span row of either table (the key of ``settled`` includes state and updated_at).
_ROW = "link = ? AND outlet = ? AND first = ? AND state = ? AND updated_at = ?"

# The number after which the next enqueue starts.
_LAST_NUMBER = (
    "SELECT MAX(last, IFNULL((SELECT first + count - 1 FROM chunks ORDER BY first DESC "
    "LIMIT 1), 0)) FROM numbers"
)

# Waiting spans of (:link, :outlet) that share a number with [:lo, :hi]. Spans of one
# outlet do not overlap, so only the last one starting at or before :lo can reach into it.
_WAITING_OVERLAPPING = (
    f"SELECT {_SPAN} FROM waiting WHERE link = :link AND outlet = :outlet AND first BETWEEN "
    "(SELECT IFNULL(MAX(first), :lo) FROM waiting WHERE link = :link AND outlet = :outlet "
    "AND first <= :lo) AND :hi AND last >= :lo"
)

# Whether any delivery of (?, ?) waits.
_ANY_WAITING = "SELECT 1 FROM waiting WHERE link = ? AND outlet = ? LIMIT 1"

# What SqliteQueue._known holds for an outlet with nothing waiting.
_NOTHING: tuple[float, tuple[StoredRun, ...]] = (0.0, ())

# The chunk holding number ?.
_CHUNK_OF = "(SELECT MAX(first) FROM chunks WHERE first <= ?)"

# Due spans of (link, outlet) in order, each with its chunk's first number; the first span
# of each chunk also brings the chunk (count, codec, sizes, data), the others NULLs, so a
# chunk's bytes are read once however many of its spans are due. Only the spans that hold
# the first ? records are kept (a running count): a backlog's later chunks are never read.
# One statement: one snapshot. Parameters: link, outlet, now, limit, limit.
_DUE = """
SELECT d.first, d.last, d.chunk, c.count, c.codec, c.sizes, c.data
FROM (SELECT first, last, chunk, LAG(chunk) OVER (ORDER BY first) AS previous
      FROM (SELECT first, last,
                   (SELECT MAX(k.first) FROM chunks k WHERE k.first <= w.first) AS chunk
            FROM (SELECT s.first, s.last,
                         SUM(s.last - s.first + 1) OVER (ORDER BY s.first) AS reach
                  FROM waiting s WHERE s.link = ? AND s.outlet = ? AND s.due_at <= ?
                  ORDER BY s.first LIMIT ?) w
            WHERE reach - (last - first + 1) < ?)) d
LEFT JOIN chunks c ON c.first = d.chunk AND d.previous IS NOT d.chunk
ORDER BY d.first
"""

# How many distinct numbers the spans of {source} cover (spans of different outlets
# overlap): walking spans by first, each adds what lies beyond the furthest end before it.
_COVERED = (
    "SELECT COALESCE(SUM(MAX(0, last - MAX(first - 1, IFNULL(reach, first - 1)))), 0) FROM "
    "(SELECT first, last, MAX(last) OVER (ORDER BY first ROWS BETWEEN UNBOUNDED PRECEDING "
    "AND 1 PRECEDING) AS reach FROM ({source}))"
)


def _table(state: int) -> str:
    return "waiting" if state < _DELIVERED else "settled"


class _Span(NamedTuple):
    link: str
    outlet: str
    first: int
    last: int
    state: int
    attempts: int
    due_at: float
    updated_at: float
    last_error: str | None


class _Chunk:
    """One chunks row, with its records' offsets in ``data``."""

    __slots__ = ("codec", "count", "data", "first", "offsets")

    def __init__(
        self, first: int, count: int, codec: str, sizes: bytes | None, data: bytes
    ) -> None:
        self.first, self.count, self.codec, self.data = first, count, codec, data
        if sizes is None:
            self.offsets = [0, len(data)]
        else:
            lengths = array(_SIZE_CODE)
            lengths.frombytes(sizes)
            if _SWAP:  # pragma: no cover - big-endian hosts
                lengths.byteswap()
            self.offsets = list(itertools.accumulate(lengths, initial=0))

    def holds(self, number: int) -> bool:
        return self.first <= number < self.first + self.count

    def stored(self, first: int, last: int) -> StoredRun:
        """Numbers ``first..last`` (all inside this chunk)."""
        data, offsets = self.data, self.offsets
        start, end = first - self.first, last - self.first + 1
        bounds = zip(offsets[start:end], offsets[start + 1 : end + 1], strict=True)
        return StoredRun(first, self.codec, [data[a:b] for a, b in bounds])


def _pack_sizes(sizes: list[int]) -> bytes:
    lengths = array(_SIZE_CODE, sizes)
    if _SWAP:  # pragma: no cover - big-endian hosts
        lengths.byteswap()
    return lengths.tobytes()


def _runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Distinct ``numbers`` as runs of consecutive values: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    if numbers and numbers == list(range(numbers[0], numbers[0] + len(numbers))):
        return [(numbers[0], numbers[-1])]  # the usual ack: one batch due() handed out
    ordered = sorted(set(numbers))
    runs: list[tuple[int, int]] = []
    start = previous = ordered[0] if ordered else 0
    for number in ordered[1:]:
        if number != previous + 1:
            runs.append((start, previous))
            start = number
        previous = number
    if ordered:
        runs.append((start, previous))
    return runs


def _chunk_bounds(encoded: Sequence[bytes]) -> Iterator[tuple[int, int]]:
    """Split records into chunks of at most _CHUNK_RECORDS and _CHUNK_BYTES (or one record)."""
    start, count = 0, len(encoded)
    while start < count:
        end = min(count, start + _CHUNK_RECORDS)
        if sum(map(len, encoded[start:end])) > _CHUNK_BYTES:
            size, end = len(encoded[start]), start + 1
            while end < count and end - start < _CHUNK_RECORDS:
                size += len(encoded[end])
                if size > _CHUNK_BYTES:
                    break
                end += 1
        yield start, end
        start = end


# Multi-row statements take at most this many rows, in pieces of a power of two each, so a
# group of any size runs a few statements of a few cached texts (and SQLite 3.31 and older
# allow no more than 999 parameters a statement).
_MOST_ROWS = 64


def _run_rows(
    conn: sqlite3.Connection, statement: Callable[[int], str], rows: list[tuple[Any, ...]]
) -> None:
    """Run ``statement(n)`` (a statement taking n rows) over ``rows``: n is a power of two,
    biggest first (7 rows: 4 + 2 + 1)."""
    if len(rows) == 1:
        conn.execute(statement(1), rows[0])
        return
    start, count = 0, len(rows)
    while start < count:
        size = min(_MOST_ROWS, 1 << (count - start).bit_length() - 1)
        piece = rows[start : start + size]
        conn.execute(statement(size), [value for row in piece for value in row])
        start += size


class _Rows:
    """Rows the jobs of one group commit write, held back and written together when the
    transaction commits (or when a job must read the tables first).

    sqlite3 releases the GIL around every statement it runs, and with many threads each
    release hands the GIL to another thread and back. A few multi-row statements per group
    instead of two or three per job, with acks posted (``_do_ack``), took 20 queued links
    at B = 1 from about 180 to 130 us of CPU per transfer (benchmarks/group_commit.py).
    """

    __slots__ = ("acks", "chunks", "spans")

    def __init__(self) -> None:
        self.chunks: list[tuple[Any, ...]] = []  # chunks rows
        self.spans: list[tuple[Any, ...]] = []  # new waiting spans (link, outlet, first, last, now)
        self.acks: list[tuple[Any, ...]] = []  # whole spans acked: (link, outlet, first, last, now)

    def clear(self) -> None:
        self.chunks, self.spans, self.acks = [], [], []

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write the rows held back (inside the transaction)."""
        if self.chunks:
            _run_rows(conn, _insert_chunks, self.chunks)
        if self.spans:
            _run_rows(conn, _insert_spans, self.spans)
        if self.acks:
            _run_rows(conn, _move_spans, self.acks)
            _run_rows(conn, _delete_spans, [ack[:4] for ack in self.acks])
        self.clear()


@functools.cache
def _insert_chunks(size: int) -> str:
    return "INSERT INTO chunks VALUES " + ",".join(["(?,?,?,?,?,?,?,?)"] * size)


@functools.cache
def _insert_spans(size: int) -> str:
    row = f"(?,?,?,?,{_PENDING},0,?,?,NULL)"
    return f"INSERT INTO waiting ({_SPAN}) VALUES " + ",".join([row] * size)


@functools.cache
def _move_spans(size: int) -> str:
    """Acked spans (link, outlet, first, last, now) go to settled, DELIVERED."""
    if size == 1:  # found by its key, without a join
        return (
            f"INSERT INTO settled ({_SPAN}) SELECT link, outlet, first, last, {_DELIVERED}, "
            "attempts, due_at, ?5, last_error FROM waiting "
            "WHERE link = ?1 AND outlet = ?2 AND first = ?3 AND last = ?4"
        )
    acked = ",".join(["(?,?,?,?,?)"] * size)
    return (
        f"INSERT INTO settled ({_SPAN}) SELECT w.link, w.outlet, w.first, w.last, "
        f"{_DELIVERED}, w.attempts, w.due_at, a.column5, w.last_error "
        f"FROM (VALUES {acked}) a JOIN waiting w ON w.link = a.column1 AND "
        "w.outlet = a.column2 AND w.first = a.column3 AND w.last = a.column4"
    )


@functools.cache
def _delete_spans(size: int) -> str:
    """Acked spans leave waiting; one OR term each, so each is found by the key."""
    one = "(link = ? AND outlet = ? AND first = ? AND last = ?)"
    return "DELETE FROM waiting WHERE " + " OR ".join([one] * size)


class SqliteQueue(RecordQueue):
    """A durable record queue in one SQLite file.

    Args:
        path: the database file (created with its tables if missing). Symbolic links are
            resolved: the lock and SQLite's ``-wal``/``-shm`` files sit beside the real file.
        busy_timeout: seconds (finite, >= 0) a write waits for SQLite's lock before failing.
        ack_sync: ``"normal"`` (default): acks and fails are fsynced by the next enqueue or
            within about a second, so a power loss may deliver their batches again (never
            lose a record); ``"full"``: fsync every ack and fail (see the module docstring).
        file_mode: permissions of the files this queue creates (the database, its ``-wal``
            and ``-shm``, the ``.lock``): owner-only ``0o600`` by default, as they hold the
            records; None leaves them to the umask. Existing files keep theirs.
        read_only: open for inspection beside a running writer: no lock, nothing created,
            ``mode=ro`` and ``PRAGMA query_only``; only the inspection methods work.
        codec, clock, retention, purge_interval: as for
            :class:`~databay_bus.queue.RecordQueue`.

    Raises:
        QueueLockedError: another process (or SqliteQueue) has the file open.
        QueueStorageError: the file cannot be used, naming it and the cause: a missing
            directory, a directory given as the path, a hard-linked file; subclasses
            QueuePermissionError (not writable), QueueFullError (disk full), QueueCorruptError
            (damaged; found by ``PRAGMA quick_check`` on open for files up to 64 MiB).
        QueueError: the file was written by a newer databay_bus, or is not a queue.
        ConfigurationError: ``':memory:'`` (use MemoryQueue) or a bad argument.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        ack_sync: str = "normal",
        file_mode: int | None = 0o600,
        read_only: bool = False,
        codec: Codec | None = None,
        clock: Clock | None = None,
        retention: float | timedelta | None = 86400.0,
        purge_interval: float | timedelta | None = 60.0,
    ) -> None:
        super().__init__(
            codec=codec, clock=clock, retention=retention, purge_interval=purge_interval
        )
        self.check_arguments(
            path, busy_timeout=busy_timeout, ack_sync=ack_sync, file_mode=file_mode
        )
        if not isinstance(read_only, bool):
            raise ConfigurationError(
                f"SqliteQueue: read_only must be a bool, got {describe(read_only)}"
            )
        self.path = Path(path)
        self.real_path = Path(os.path.realpath(self.path))
        self.busy_timeout = float(busy_timeout)
        self.ack_sync = ack_sync
        self.file_mode = file_mode
        self.read_only = read_only
        self._lock = threading.Lock()
        self._group = GroupCommit(self, self._commit_group)  # threads share commits
        self._rows = _Rows()  # what the jobs of the group being committed write
        self._local = threading.local()
        self._connections: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = {}
        self._connections_lock = threading.Lock()
        # id(connection) -> statements under way on it: close() never closes a connection
        # while another thread runs a statement on it (that crashes the interpreter)
        self._busy: dict[int, int] = {}
        self._idle = threading.Condition(self._connections_lock)
        # The one connection writes use, under _lock, whichever thread writes: its page
        # cache stays valid from one write to the next (a connection that another one
        # wrote behind re-reads its pages); and its synchronous setting (True: FULL).
        self._writer: sqlite3.Connection | None = None
        self._writer_full = True
        self._unsynced_since: float | None = None  # first NORMAL commit after the last FULL
        # The last record number handed out. This process is the file's only writer (the
        # file lock), so it is kept here instead of read in every enqueue; None: read it.
        self._last_number: int | None = None
        self._corrupt: str | None = None  # why the file is known to be damaged
        # (link, outlet) -> what waits for it, where this process knows it exactly (it is
        # the file's only writer): _NOTHING, or (due_at, runs) when exactly the PENDING runs
        # of one enqueue wait, all due at due_at. Absent: unknown, read the file. Changed
        # under _lock, and only once the change is committed (_after_commit), so due() never
        # hands out records before their commit.
        self._known: dict[tuple[str, str], tuple[float, tuple[StoredRun, ...]]] = {}
        self._after_commit: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._file_lock: filelock.BaseFileLock | None = None
        self._closed = False
        try:
            self._check_path()
            if not read_only:
                self._file_lock = self._take_file_lock()
                self._create_file()
            self._id = self._inspect_file() if read_only else self._prepare()
        except BaseException:
            self._do_close()
            raise

    @staticmethod
    def check_arguments(
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        ack_sync: str = "normal",
        file_mode: int | None = 0o600,
    ) -> None:
        """Raise ConfigurationError for a ``path``, ``busy_timeout``, ``ack_sync`` or
        ``file_mode`` the constructor would refuse, without opening anything (``databay-bus
        validate`` uses it so a dry run never touches a file a running pipeline holds)."""
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ConfigurationError(f"SqliteQueue: path must be a file path, got {describe(path)}")
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise ConfigurationError(
                f"SqliteQueue: path must be a file path, got {describe(path)}; "
                f"use MemoryQueue for a queue in memory"
            )
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, (int, float))
            or not 0 <= busy_timeout < math.inf
        ):
            raise ConfigurationError(
                f"SqliteQueue: busy_timeout must be seconds (finite, >= 0), "
                f"got {describe(busy_timeout)}"
            )
        if ack_sync not in _ACK_SYNC:
            raise ConfigurationError(
                f"SqliteQueue: ack_sync must be 'normal' or 'full', got {describe(ack_sync)}"
            )
        if file_mode is not None and (
            isinstance(file_mode, bool)
            or not isinstance(file_mode, int)
            or not 0 <= file_mode <= 0o777
            or not file_mode & 0o600 == 0o600
        ):
            raise ConfigurationError(
                f"SqliteQueue: file_mode must be permission bits such as 0o600 that let the "
                f"owner read and write, or None (the umask decides), got {describe(file_mode)}"
            )

    @property
    def queue_id(self) -> str:
        return self._id

    # -- the file, its lock and storage errors ---------------------------------------------

    def _where(self) -> str:
        shown = str(self.path)
        real = str(self.real_path)
        return (
            repr(shown) if real in (shown, os.path.abspath(shown)) else f"{shown!r} (-> {real!r})"
        )

    def _storage_error(
        self, kind: type[QueueStorageError], what: str, cause: str
    ) -> QueueStorageError:
        error = kind(f"SqliteQueue {self._where()}: {what}: {cause}", str(self.real_path), cause)
        if kind is QueueCorruptError:
            self._corrupt = str(error)
        return error

    def _os_error(self, exc: OSError, what: str) -> QueueStorageError:
        """An OSError met while using the file, as the QueueStorageError that says so."""
        cause = f"{type(exc).__name__}: {exc.strerror or exc}"
        if isinstance(exc, PermissionError):
            return self._storage_error(QueuePermissionError, what, cause)
        if exc.errno in _FULL_ERRNOS:
            return self._storage_error(QueueFullError, what, cause)
        return self._storage_error(QueueStorageError, what, cause)

    def _sqlite_error(self, exc: sqlite3.Error, doing: str) -> QueueStorageError:
        """A sqlite3 error as the QueueStorageError subclass that names its cause."""
        code = getattr(exc, "sqlite_errorcode", None)
        primary = -1 if code is None else code & 0xFF
        kind, what = _SQLITE_ERRORS.get(primary, (QueueStorageError, "storage error"))
        cause = f"{exc}"
        if primary == _SQLITE_IOERR:  # SQLite reports a write past a size limit as I/O error
            full = self._full_cause()
            if full is not None:
                kind, what = QueueFullError, full
        return self._storage_error(kind, f"{what} while {doing}", cause)

    def _full_cause(self) -> str | None:
        """Why a write failed for lack of room, if it did: a file size limit or a full disk."""
        try:
            import resource

            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
            limit = -1
        if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
            for suffix in ("", "-wal"):
                with contextlib.suppress(OSError):
                    if os.path.getsize(f"{self.real_path}{suffix}") + (1 << 16) >= limit:
                        return f"file size limit reached (RLIMIT_FSIZE {limit} bytes)"
        with contextlib.suppress(AttributeError, OSError):
            disk = os.statvfs(self.real_path.parent)
            if disk.f_bavail * disk.f_frsize < (1 << 20):
                return "disk full"
        return None

    def _check_path(self) -> None:
        real = self.real_path
        try:
            if real.is_dir():
                raise self._storage_error(
                    QueueStorageError, "cannot be used", "it is a directory, not a queue file"
                )
            if not real.parent.is_dir():
                raise self._storage_error(
                    QueueStorageError,
                    "cannot be used",
                    f"its directory {str(real.parent)!r} does not exist",
                )
            exists = real.exists()
            if self.read_only and not exists:
                raise self._storage_error(QueueStorageError, "cannot be inspected", "no such file")
            links = os.stat(real).st_nlink if exists else 1
        except OSError as exc:
            if isinstance(exc, QueueStorageError):
                raise
            raise self._os_error(exc, "cannot be used") from exc
        if links > 1:
            raise self._storage_error(
                QueueStorageError,
                "cannot be used",
                f"the file has {links} hard links; SQLite finds its -wal file by name, so two "
                f"names for one queue file would corrupt it and get past its one-process "
                f"lock: open it by one name only",
            )

    def _take_file_lock(self) -> filelock.BaseFileLock:
        """Lock ``<real path>.lock`` (filelock: flock on POSIX, LockFileEx on Windows)."""
        lock_path = f"{self.real_path}.lock"
        mode = -1 if self.file_mode is None else self.file_mode
        lock = filelock.FileLock(lock_path, timeout=0, mode=mode, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise QueueLockedError(
                f"SqliteQueue {self._where()} is in use by {self._holder()} (lock file "
                f"{lock_path!r}); one process at a time may open a queue file for delivery, "
                f"and within a process links share one SqliteQueue instance (read-only "
                f"inspection beside it: SqliteQueue(path, read_only=True))"
            ) from None
        except OSError as exc:
            raise self._os_error(exc, f"cannot take its lock file {lock_path!r}") from exc
        return lock

    def _holder(self) -> str:
        """Who holds the file, as its holder wrote it in the file ('process 123 on host')."""
        try:
            conn = sqlite3.connect(self.real_path.as_uri() + "?mode=ro", uri=True, timeout=1)
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'holder'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            row = None
        return str(row[0]) if row else "another process"

    def _create_file(self) -> None:
        """Create a missing database file with ``file_mode``; SQLite gives its -wal and
        -shm files the database file's permissions."""
        if self.file_mode is None:
            return
        try:
            fd = os.open(self.real_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
        except FileExistsError:
            return
        except OSError as exc:
            raise self._os_error(exc, "cannot be created") from exc
        try:
            if hasattr(os, "fchmod"):  # not on Windows: the umask may have taken bits away
                os.fchmod(fd, self.file_mode)
        finally:
            os.close(fd)

    # -- connections and transactions ------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        target = self.real_path.as_uri() + ("?mode=ro" if self.read_only else "")
        try:
            conn = sqlite3.connect(
                target,
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=128,  # the multi-row statements of _Rows add up to 28
            )
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc, "opening it") from exc
        try:
            if self.read_only:
                conn.execute("PRAGMA query_only=1")
            else:
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._sqlite_error(exc, "opening it") from exc
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise QueueError(f"{self!r} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        thread = threading.current_thread()
        with self._connections_lock:
            for key, (ref, old) in list(self._connections.items()):
                if ref() is None or not ref().is_alive():  # type: ignore[union-attr]
                    old.close()  # its thread has ended
                    del self._connections[key]
            conn = self._connect()
            self._connections[id(conn)] = (weakref.ref(thread), conn)
        self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, marked busy until the block ends (see ``_busy``)."""
        conn = self._conn()
        key = id(conn)
        with self._connections_lock:
            if self._closed:
                raise QueueError(f"{self!r} is closed")
            self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield conn
        finally:
            with self._connections_lock:
                left = self._busy.pop(key) - 1
                if left:
                    self._busy[key] = left
                elif self._closed and self._connections.pop(key, None) is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()  # close() left it to this thread
                self._idle.notify_all()

    @contextlib.contextmanager
    def _write(self, durable: bool = True, doing: str = "writing") -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK.

        ``durable``: fsync the commit (synchronous=FULL). Otherwise (acks and fails) the
        commit is fsynced later, as the module docstring says, unless ``ack_sync="full"``.
        SQLite errors become QueueStorageError subclasses naming the file and the cause.
        """
        if self.read_only:
            raise QueueReadOnlyError(f"{self!r} is open read-only; {doing} changes the queue")
        with self._lock:
            full = (
                durable
                or self.ack_sync == "full"
                or (
                    self._unsynced_since is not None
                    and self.clock.monotonic() - self._unsynced_since >= _SYNC_WINDOW
                )
            )
            conn = self._writing(full)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    self._rows.flush(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    self._rows.clear()
                    self._last_number = None  # read it from the file again
                    self._after_commit.clear()
                    self._known.clear()
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise self._sqlite_error(exc, doing) from exc
            finally:
                if self._closed:  # close() came while this wrote: it left the writer to it
                    self._close_writer()
            if full:
                self._unsynced_since = None
            elif self._unsynced_since is None:
                self._unsynced_since = self.clock.monotonic()
            if self._after_commit:
                effects, self._after_commit = self._after_commit, []
                for effect, args in effects:
                    effect(*args)

    def _writing(self, full: bool) -> sqlite3.Connection:
        """The writer's connection, set to commit with synchronous FULL (``full``) or
        NORMAL; the caller holds ``_lock``."""
        if self._closed:
            raise QueueError(f"{self!r} is closed")
        conn = self._writer
        if conn is None:
            conn = self._writer = self._connect()
            self._writer_full = True  # _connect sets FULL
        if self._writer_full is not full:
            try:
                conn.execute("PRAGMA synchronous=FULL" if full else "PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise self._sqlite_error(exc, "writing") from exc
            self._writer_full = full
        return conn

    def _close_writer(self) -> None:
        """Close the writer's connection; the caller holds ``_lock``."""
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.close()  # the last one checkpoints, which fsyncs NORMAL commits
            self._writer = None

    @contextlib.contextmanager
    def _read(
        self, doing: str = "reading", link: str | None = None
    ) -> Iterator[sqlite3.Connection]:
        """A consistent read (one snapshot) on this thread's connection, after the acks
        posted to a commit (of ``link``; None: of any link) are in."""
        self._group.settle(link)
        with self._using() as conn:
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise self._sqlite_error(exc, doing) from exc

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        """``PRAGMA quick_check`` for files up to ``_QUICK_CHECK_BYTES``; larger files are
        not read whole at open: damage found later refuses new records from then on."""
        try:
            size = os.path.getsize(self.real_path)
        except OSError:
            size = 0
        if size > _QUICK_CHECK_BYTES:
            _LOGGER.info(
                "%r: %d MiB, no quick_check on open (run integrity_check() or "
                "'databay-bus queue check' to check it whole)",
                self,
                size >> 20,
            )
            return
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:  # too damaged to list its problems
            rows = [(str(exc),)]
        if rows and rows[0][0] != "ok":
            problems = [
                line
                for row in rows
                for line in str(row[0]).splitlines()
                if line and not line.startswith("***")
            ] or ["?"]
            raise self._storage_error(
                QueueCorruptError,
                "the file is damaged and accepts no new records",
                f"PRAGMA quick_check found {len(problems)} problem(s), the first: "
                f"{problems[0]}; salvage what remains with: sqlite3 "
                f"{str(self.real_path)!r} .recover",
            )

    def _prepare(self) -> str:
        conn = self._conn()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._sqlite_error(exc, "opening it (not a queue file, or damaged)") from exc
        if str(mode).lower() != "wal":
            raise QueueError(f"SqliteQueue: {str(self.path)!r} cannot use WAL (got {mode!r})")
        with self._read("checking it") as conn:
            self._quick_check(conn)
        with self._write(doing="opening it") as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "schema_version" not in tables:
                if tables - {"sqlite_sequence"}:
                    raise QueueError(
                        f"SqliteQueue: {str(self.path)!r} holds other tables {sorted(tables)}; "
                        f"it is not a databay_bus queue file"
                    )
                self._script(conn, SCHEMA)
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
                _LOGGER.info("Migrating queue file %s from schema %d", self.path, version)
                self._script(conn, MIGRATIONS[version])
                version += 1
                conn.execute("UPDATE schema_version SET version = ?", (version,))
            found = conn.execute("SELECT value FROM meta WHERE key='queue_id'").fetchone()
            queue_id: str = found[0]
            # Who holds the file (a refused opener names it) and the codec new records get;
            # status records of an earlier process are stale.
            conn.execute("DELETE FROM meta WHERE key LIKE 'status:%'")
            conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [
                    ("holder", f"process {os.getpid()} on {socket.gethostname()}"),
                    ("codec", self.codec.name),
                ],
            )
        return queue_id

    def _inspect_file(self) -> str:
        """Read-only open: check the file is a queue of this schema; change nothing."""
        with self._read("opening it read-only") as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "schema_version" not in tables:
                raise QueueError(f"SqliteQueue: {str(self.path)!r} is not a databay_bus queue file")
            version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise QueueError(
                    f"SqliteQueue: {str(self.path)!r} has schema version {version}; this "
                    f"databay_bus reads version {SCHEMA_VERSION} "
                    + (
                        "(upgrade databay_bus)"
                        if version > SCHEMA_VERSION
                        else "(open it once for delivery to migrate it)"
                    )
                )
            self._quick_check(conn)
            found = conn.execute("SELECT value FROM meta WHERE key='queue_id'").fetchone()
            queue_id: str = found[0]
        return queue_id

    def record_status(self, owner: str, text: str) -> None:
        with self._write(durable=False, doing="recording the pipeline's status") as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"status:{owner}", text))

    def recorded_status(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT value FROM meta WHERE key LIKE 'status:%' ORDER BY key"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def file_codec(self) -> str | None:
        """The codec the file's writer stores new records with (recorded on open)."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'codec'").fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _script(conn: sqlite3.Connection, script: str) -> None:
        """Run ``;``-separated statements inside the current transaction."""
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)

    # -- spans and chunks --------------------------------------------------------------------

    @staticmethod
    def _retag(
        conn: sqlite3.Connection,
        span: _Span,
        lo: int,
        hi: int,
        new: tuple[int, int, float, float, str | None] | None,
    ) -> tuple[int, int]:
        """Give numbers lo..hi of ``span`` the values ``new`` (state, attempts, due_at,
        updated_at, last_error), or delete them (None); the rest of the span keeps its own.

        Each part goes to the table of its state. Returns ``(first, count)`` of the part
        that changed.
        """
        first, last = max(span.first, lo), min(span.last, hi)
        table = _table(span.state)
        key = (span.link, span.outlet, span.first, span.state, span.updated_at)
        if new is not None and span.first == first and table == _table(new[0]) == "waiting":
            conn.execute(  # the row becomes the changed part
                "UPDATE waiting SET last = ?, state = ?, attempts = ?, due_at = ?, "
                f"updated_at = ?, last_error = ? WHERE {_ROW}",
                (last, *new, *key),
            )
        else:
            if span.first < first:  # the row keeps the left part
                conn.execute(f"UPDATE {table} SET last = ? WHERE {_ROW}", (first - 1, *key))
            else:
                conn.execute(f"DELETE FROM {table} WHERE {_ROW}", key)
            if new is not None:
                conn.execute(
                    f"INSERT INTO {_table(new[0])} ({_SPAN}) VALUES (?,?,?,?,?,?,?,?,?)",
                    (span.link, span.outlet, first, last, *new),
                )
        if last < span.last:  # the right part, unchanged
            conn.execute(
                f"INSERT INTO {table} ({_SPAN}) VALUES (?,?,?,?,?,?,?,?,?)",
                (span.link, span.outlet, last + 1, *span[3:]),
            )
        return first, last - first + 1

    @staticmethod
    def _release(conn: sqlite3.Connection, parts: list[tuple[int, int]]) -> None:
        """Deliveries ``(first, count)`` were deleted: count them off their chunks, and
        delete the chunks left with none (keeping their numbers used)."""
        if not parts:
            return
        conn.executemany(
            f"UPDATE chunks SET live = live - ? WHERE first = {_CHUNK_OF}",
            [(count, first) for first, count in parts],
        )
        conn.execute(f"UPDATE numbers SET last = ({_LAST_NUMBER})")
        conn.executemany(
            f"DELETE FROM chunks WHERE first = {_CHUNK_OF} AND live <= 0",
            [(first,) for first in sorted({first for first, _ in parts})],
        )

    @staticmethod
    def _records(conn: sqlite3.Connection, numbers: Sequence[int]) -> dict[int, StoredRecord]:
        """The stored records of ``numbers`` (those whose chunk still exists)."""
        found: dict[int, StoredRecord] = {}
        chunk: _Chunk | None = None
        for number in sorted(set(numbers)):
            if chunk is None or not chunk.holds(number):
                row = conn.execute(
                    "SELECT first, count, codec, sizes, data FROM chunks "
                    f"WHERE first = {_CHUNK_OF}",
                    (number,),
                ).fetchone()
                if row is None:
                    continue
                chunk = _Chunk(*row)
                if not chunk.holds(number):
                    continue
            (found[number],) = chunk.stored(number, number).records()
        return found

    # -- the delivery cycle -----------------------------------------------------------------

    def _do_enqueue(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
        cursors: Mapping[str, CursorWrite] | None = None,
    ) -> list[int]:
        chunks: list[tuple[int, int, int, bytes | None, bytes]] = []
        spans: list[tuple[str, int, int]] = []
        for start, end in _chunk_bounds(encoded):
            # Per outlet, the runs of consecutive records (indexes) that go to it.
            runs: dict[str, list[tuple[int, int]]] = {}
            names = targets[start]
            if all(map(operator.is_, targets[start:end], itertools.repeat(names))):  # no router
                part = encoded[start:end]
                runs = {outlet: [(start, end - 1)] for outlet in dict.fromkeys(names)}
            else:  # routed: a record with no target stores no bytes
                part = [encoded[i] if targets[i] else b"" for i in range(start, end)]
                for index in range(start, end):
                    for outlet in targets[index]:
                        found = runs.setdefault(outlet, [])
                        if found and found[-1][1] >= index - 1:
                            found[-1] = (found[-1][0], index)
                        else:
                            found.append((index, index))
            if runs:
                sizes = None if len(part) == 1 else _pack_sizes([len(d) for d in part])
                live = sum(hi - lo + 1 for found in runs.values() for lo, hi in found)
                chunks.append((start, end - start, live, sizes, b"".join(part)))
                spans.extend((outlet, lo, hi) for outlet, found in runs.items() for lo, hi in found)
        if self._corrupt is not None:
            raise QueueCorruptError(self._corrupt, str(self.real_path), "found damaged earlier")

        outlets = list(dict.fromkeys(outlet for outlet, _, _ in spans))

        def store(conn: sqlite3.Connection) -> list[int]:
            unknown = [outlet for outlet in outlets if (link, outlet) not in self._known]
            if cursors or unknown or self._last_number is None:
                self._rows.flush(conn)  # the reads below must see the earlier jobs' rows
            if cursors:
                self._write_cursors(conn, link, cursors, now)  # first: a conflict stores nothing
            # Outlets whose state this process does not know: did anything wait for them?
            empty = {
                outlet
                for outlet in unknown
                if not conn.execute(_ANY_WAITING, (link, outlet)).fetchall()
            }
            if self._last_number is None:
                self._last_number = conn.execute(_LAST_NUMBER).fetchone()[0]
            base = self._last_number + 1
            self._last_number += len(encoded)  # reset by _write if this does not commit
            if not chunks or chunks[-1][0] + chunks[-1][1] < len(encoded):
                # The last numbers are in no chunk: keep them used all the same.
                conn.execute("UPDATE numbers SET last = ?", (base + len(encoded) - 1,))
            self._rows.chunks += [
                (base + start, count, link, codec, now, live, sizes, data)
                for start, count, live, sizes, data in chunks
            ]
            self._rows.spans += [
                (link, outlet, base + lo, base + hi, now, now) for outlet, lo, hi in spans
            ]
            effect = (link, codec, encoded, spans, base, now, empty)
            self._after_commit.append((self._stored, effect))
            return list(range(base, base + len(encoded)))

        numbers: list[int] = self._group.run(Job(store))
        return numbers

    def _commit_group(self, jobs: list[Job]) -> None:
        """Run ``jobs`` in one transaction, fsynced if one of them is durable.

        All at once first; if one fails, that transaction is rolled back and they run again,
        each in a savepoint, so the failure undoes only its own job's writes (savepoints
        cost two statements per job, most of a small ack's or enqueue's own). Jobs without
        work (readers waiting for posted writes) need no transaction of their own.
        """
        works = [(job, job.work) for job in jobs if job.work is not None]
        if not works:
            return
        durable = any(job.durable for job, _ in works)
        doing = works[0][0].doing if len(works) == 1 else "committing a group of writes"
        try:
            with self._write(durable, doing) as conn:
                for job, work in works:
                    job.result = work(conn)
            return
        except Exception:  # a job failed, or the commit: find out which, one by one
            if len(works) == 1:  # alone: its failure is the transaction's
                raise
            _LOGGER.debug(
                "%r: a group of %d writes failed; running each again in a savepoint",
                self,
                len(jobs),
            )
        with self._write(durable, doing) as conn:
            for job, work in works:
                last_number, effects = self._last_number, len(self._after_commit)
                conn.execute("SAVEPOINT job")
                try:
                    job.result = work(conn)
                    self._rows.flush(conn)
                except Exception as exc:
                    self._rows.clear()
                    conn.execute("ROLLBACK TO job")
                    self._last_number = last_number
                    del self._after_commit[effects:]
                    if isinstance(exc, sqlite3.DatabaseError):
                        exc = self._sqlite_error(exc, job.doing)
                    job.error = exc
                conn.execute("RELEASE job")

    # -- what waits, where this process knows it (see _known) --------------------------------

    def _stored(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        spans: list[tuple[str, int, int]],
        base: int,
        now: float,
        empty: set[str],
    ) -> None:
        """After an enqueue's commit: an outlet that had nothing waiting (known, or found
        in ``empty``) now has exactly what it stored, so its ``due`` needs no read; any
        other is unknown from now on."""
        known = self._known
        for outlet in dict.fromkeys(outlet for outlet, _, _ in spans):
            key = (link, outlet)
            if outlet in empty or known.get(key) is _NOTHING:
                runs = tuple(
                    StoredRun(base + lo, codec, list(encoded[lo : hi + 1]))
                    for name, lo, hi in spans
                    if name == outlet
                )
                known[key] = (now, runs)
            else:
                known.pop(key, None)

    def _acked(
        self, link: str, outlet: str, runs: list[tuple[int, int]], changed: int, left: bool
    ) -> None:
        """After an ack's commit: ``left`` says whether anything of (link, outlet) still
        waits, when that was looked up; else the known runs acked whole leave nothing."""
        key = (link, outlet)
        if not left:
            self._known[key] = _NOTHING
            return
        state = self._known.get(key)
        if state is None or state is _NOTHING or not changed:
            return
        if all(
            any(lo <= run.first and run.first + len(run.encoded) - 1 <= hi for lo, hi in runs)
            for run in state[1]
        ):
            self._known[key] = _NOTHING
        else:
            del self._known[key]

    def _do_due(self, link: str, outlet: str, limit: int, now: float) -> list[StoredRun]:
        self._group.settle(link)  # acks of this link posted to a commit are in first
        known = self._known.get((link, outlet))
        if known is not None:  # committed, and what waits is known: no read needed
            due_at, runs = known
            if not runs:
                return []
            if due_at <= now and sum(len(run.encoded) for run in runs) <= limit:
                return list(runs)
        try:
            with self._using() as conn:
                rows = conn.execute(_DUE, (link, outlet, now, limit, limit)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._sqlite_error(exc, "reading due records") from exc
        found: list[StoredRun] = []
        chunk: _Chunk | None = None
        for first, last, chunk_first, count, codec, sizes, data in rows:
            if count is not None:  # the first span of its chunk brings the chunk along
                chunk = _Chunk(chunk_first, count, codec, sizes, data)
            if chunk is None or not chunk.holds(first):  # pragma: no cover - spans have chunks
                raise QueueError(f"{self!r}: record {first} has no stored data")
            found.append(chunk.stored(first, min(last, first + limit - 1)))
            limit -= len(found[-1].encoded)
            if limit <= 0:
                break
        return found

    def _waiting_spans(
        self, conn: sqlite3.Connection, link: str, outlet: str, runs: list[tuple[int, int]]
    ) -> Iterator[tuple[_Span, int, int]]:
        """Waiting spans of (link, outlet) holding numbers of ``runs``, with the run they hold."""
        args: dict[str, object] = {"link": link, "outlet": outlet}
        for lo, hi in runs:
            args["lo"], args["hi"] = lo, hi
            for row in conn.execute(_WAITING_OVERLAPPING, args).fetchall():
                yield _Span(*row), lo, hi

    def _do_ack(self, link: str, outlet: str, numbers: list[int], now: float) -> int:
        runs = _runs(numbers)
        count = sum(hi - lo + 1 for lo, hi in runs)
        known = self._known.get((link, outlet))
        spans = self._known_spans(known, runs)

        def ack(conn: sqlite3.Connection) -> int:
            if spans is not None and self._known.get((link, outlet)) is known:
                # exactly these spans wait: they move with the group's other rows
                self._rows.acks += [(link, outlet, lo, hi, now) for lo, hi in spans]
                changed = count
            else:
                self._rows.flush(conn)  # the reads below must see the earlier jobs' rows
                changed = self._move_acked(conn, link, outlet, runs, now)
            left = True
            if (link, outlet) not in self._known:  # find out whether anything still waits
                left = bool(conn.execute(_ANY_WAITING, (link, outlet)).fetchall())
            self._after_commit.append((self._acked, (link, outlet, runs, changed, left)))
            return changed

        job = Job(ack, False, "recording a delivery")
        # While another thread commits, an ack whose outcome is known is posted to its next
        # commit instead of waiting for it (a crash before then delivers the batch again,
        # as one between push and ack does); ack_sync="full" promises the fsync first.
        if spans is not None and self.ack_sync == "normal" and self._group.post(job, link):
            return count
        changed: int = self._group.run(job)
        return changed

    @staticmethod
    def _known_spans(
        known: tuple[float, tuple[StoredRun, ...]] | None, runs: list[tuple[int, int]]
    ) -> list[tuple[int, int]] | None:
        """The waiting spans of an outlet whose ``known`` state (see ``_known``) is exactly
        ``runs``: the usual ack of a batch ``due`` handed out; else None."""
        if known is None or not known[1]:
            return None
        spans = [(run.first, run.first + len(run.encoded) - 1) for run in known[1]]
        merged = spans[:1]
        for lo, hi in spans[1:]:
            if merged[-1][1] + 1 == lo:
                merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return spans if merged == runs else None

    def _move_acked(
        self,
        conn: sqlite3.Connection,
        link: str,
        outlet: str,
        runs: list[tuple[int, int]],
        now: float,
    ) -> int:
        """Inside a write: waiting deliveries in ``runs`` become DELIVERED; return how many."""
        if len(runs) == 1:  # usually the batch is one whole span: move it as it is
            lo, hi = runs[0]
            moved = conn.execute(
                f"INSERT INTO settled ({_SPAN}) SELECT link, outlet, first, last, "
                f"{_DELIVERED}, attempts, due_at, ?, last_error FROM waiting WHERE "
                "link = ? AND outlet = ? AND first = ? AND last = ?",
                (now, link, outlet, lo, hi),
            ).rowcount
            if moved:
                conn.execute(
                    "DELETE FROM waiting WHERE link = ? AND outlet = ? AND first = ?",
                    (link, outlet, lo),
                )
                return hi - lo + 1
        changed = 0
        for span, lo, hi in self._waiting_spans(conn, link, outlet, runs):
            new = (_DELIVERED, span.attempts, span.due_at, now, span.last_error)
            changed += self._retag(conn, span, lo, hi, new)[1]
        return changed

    def _do_fail(
        self,
        link: str,
        outlet: str,
        numbers: list[int],
        error: str,
        now: float,
        next_delay: Callable[[int], float | None],
    ) -> tuple[int, list[int]]:
        retrying = 0
        dead: list[int] = []
        delays: dict[int, float | None] = {}  # one retry time per attempt count
        with self._write(durable=False, doing="recording a failure") as conn:
            self._known.pop((link, outlet), None)  # retry times and attempts: unknown here
            for span, lo, hi in self._waiting_spans(conn, link, outlet, _runs(numbers)):
                attempts = span.attempts + 1
                if attempts not in delays:
                    delays[attempts] = next_delay(attempts)
                delay = delays[attempts]
                if delay is None:
                    new = (_DEAD, attempts, span.due_at, now, error)
                    first, count = self._retag(conn, span, lo, hi, new)
                    dead.extend(range(first, first + count))
                else:
                    new = (_FAILED, attempts, now + delay, now, error)
                    retrying += self._retag(conn, span, lo, hi, new)[1]
        return retrying, dead

    def _do_waiting(self, link: str) -> int:
        with self._read(link=link) as conn:
            count: int = conn.execute(
                _COVERED.format(source="SELECT first, last FROM waiting WHERE link = ?"),
                (link,),
            ).fetchone()[0]
        return count

    def _do_waiting_outlets(self, link: str) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT outlet FROM waiting WHERE link = ?", (link,)
            ).fetchall()
        return [row[0] for row in rows]

    # -- operations -------------------------------------------------------------------------

    def _do_stats(self, now: float) -> tuple[list[OutletStats], int]:
        with self._read() as conn:
            counts: dict[tuple[str, str], dict[int, int]] = {}
            for link, outlet, state, count in conn.execute(
                "SELECT link, outlet, state, SUM(last - first + 1) FROM waiting "
                "GROUP BY link, outlet, state UNION ALL "
                "SELECT link, outlet, state, SUM(last - first + 1) FROM settled "
                "GROUP BY link, outlet, state"
            ):
                counts.setdefault((link, outlet), {})[state] = count
            oldest = {
                (link, outlet): enqueued
                for link, outlet, enqueued in conn.execute(
                    "SELECT w.link, w.outlet, (SELECT enqueued_at FROM chunks "
                    "WHERE chunks.first <= w.oldest ORDER BY chunks.first DESC LIMIT 1) "
                    "FROM (SELECT link, outlet, MIN(first) AS oldest FROM waiting "
                    "GROUP BY link, outlet) w"
                )
            }
            records: int = conn.execute(
                _COVERED.format(
                    source="SELECT first, last FROM waiting UNION ALL "
                    "SELECT first, last FROM settled"
                )
            ).fetchone()[0]
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
    def _selected(
        conn: sqlite3.Connection,
        states: Sequence[int],
        link: str | None,
        outlet: str | None,
        numbers: list[int] | None,
    ) -> Iterator[tuple[_Span, int, int]]:
        """Spans in ``states`` of ``link`` and ``outlet`` (None: any) holding any of
        ``numbers`` (None: all), each with the run of numbers selected in it.

        Lazy, one run at a time: a caller that changes the spans it gets sees its changes
        when the next run is looked up (two runs can fall in one span).
        """
        clauses: list[str] = []
        args: dict[str, object] = {}
        if link is not None:
            clauses.append("link = :link")
            args["link"] = link
        if outlet is not None:
            clauses.append("outlet = :outlet")
            args["outlet"] = outlet
        runs: list[tuple[int, int] | None] = [None] if numbers is None else list(_runs(numbers))
        for table in ("waiting", "settled"):
            chosen = sorted(s for s in states if _table(s) == table)
            if not chosen:
                continue
            where = " AND ".join([f"state IN ({','.join(map(str, chosen))})", *clauses])
            for run in runs:
                sql = f"SELECT {_SPAN} FROM {table} WHERE {where}"
                if run is not None:
                    sql += " AND first <= :hi AND last >= :lo"
                    args["lo"], args["hi"] = run
                for row in conn.execute(sql, args).fetchall():
                    span = _Span(*row)
                    lo, hi = run or (span.first, span.last)
                    yield span, lo, hi

    def _stored_in_spans(
        self, states: list[int], link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, StoredRecord, _Span]]:
        """``(number, stored record, span)`` of the deliveries in ``states``, in (number,
        outlet) order, at most ``limit``; one read transaction."""
        with self._read() as conn:
            spans = [span for span, _, _ in self._selected(conn, states, link, outlet, None)]
            # A span adds at most ``limit`` entries to the answer.
            cap = None if limit is None else max(0, limit)
            entries = sorted(
                (number, span.outlet, span)
                for span in spans
                for number in range(
                    span.first,
                    span.last + 1 if cap is None else min(span.last + 1, span.first + cap),
                )
            )[:cap]
            stored = self._records(conn, [number for number, _, _ in entries])
        return [(number, stored[number], span) for number, _, span in entries if number in stored]

    def _do_dead_letters(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, str | None, float]]:
        return [
            (
                number,
                item.codec,
                item.data,
                span.link,
                span.outlet,
                span.attempts,
                span.last_error,
                span.updated_at,
            )
            for number, item, span in self._stored_in_spans([_DEAD], link, outlet, limit)
        ]

    def _do_waiting_records(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, int, float, str | None]]:
        return [
            (
                number,
                item.codec,
                item.data,
                span.link,
                span.outlet,
                span.state,
                span.attempts,
                span.due_at,
                span.last_error,
            )
            for number, item, span in self._stored_in_spans(
                [_PENDING, _FAILED], link, outlet, limit
            )
        ]

    def _do_delivered_records(
        self, link: str | None, outlet: str | None, after: tuple[int, str], limit: int
    ) -> list[tuple[int, str, bytes, str, str, int, float]]:
        after_number, after_outlet = after
        sql = f"SELECT {_SPAN} FROM {_table(_DELIVERED)} WHERE state = {_DELIVERED}"
        sql += " AND last >= :after"
        args: dict[str, object] = {"after": after_number}
        if link is not None:
            sql += " AND link = :link"
            args["link"] = link
        if outlet is not None:
            sql += " AND outlet = :outlet"
            args["outlet"] = outlet
        cap = max(0, limit)
        with self._read() as conn:
            spans = [_Span(*row) for row in conn.execute(sql, args).fetchall()]
            entries = sorted(
                (number, span.outlet, span)
                for span in spans
                # A span adds at most ``cap`` entries past ``after`` to the answer.
                for number in range(
                    max(span.first, after_number),
                    min(span.last + 1, max(span.first, after_number) + cap + 1),
                )
                if (number, span.outlet) > (after_number, after_outlet)
            )[:cap]
            stored = self._records(conn, [number for number, _, _ in entries])
        return [
            (
                number,
                stored[number].codec,
                stored[number].data,
                span.link,
                span.outlet,
                span.attempts,
                span.updated_at,
            )
            for number, _, span in entries
            if number in stored
        ]

    def _do_codecs(self) -> list[str]:
        with self._read() as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT codec FROM chunks")]

    def _do_replay(
        self, link: str | None, outlet: str | None, numbers: list[int] | None, now: float
    ) -> int:
        total = 0
        with self._write() as conn:
            self._known.clear()
            for span, lo, hi in self._selected(conn, [_DEAD], link, outlet, numbers):
                new = (_PENDING, 0, now, now, span.last_error)
                total += self._retag(conn, span, lo, hi, new)[1]
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
        with self._write() as conn:
            self._known.clear()
            parts = [
                self._retag(conn, span, lo, hi, None)
                for span, lo, hi in self._selected(conn, sorted(states), link, outlet, numbers)
            ]
            self._release(conn, parts)
        return sum(count for _, count in parts)

    def _do_purge(self, before: float) -> int:
        """Delete in short transactions of up to 1000 spans each, so transfers go on."""
        total = 0
        while not self._closed:
            with self._write() as conn:
                rows = conn.execute(
                    "SELECT link, outlet, first, last, updated_at FROM settled "
                    f"WHERE state = {_DELIVERED} AND updated_at < ? LIMIT ?",
                    (before, _PURGE_SPANS),
                ).fetchall()
                conn.executemany(
                    f"DELETE FROM settled WHERE {_ROW}",
                    [(link, outlet, first, _DELIVERED, at) for link, outlet, first, _, at in rows],
                )
                parts = [(first, last - first + 1) for _, _, first, last, _ in rows]
                self._release(conn, parts)
            total += sum(count for _, count in parts)
            if len(rows) < _PURGE_SPANS:
                break
        return total

    def integrity_check(self) -> str:
        """Run SQLite's ``PRAGMA integrity_check``; ``'ok'`` when the file is sound."""
        try:
            with self._read("checking it") as conn:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
        except QueueCorruptError as exc:
            return str(exc)
        return "\n".join(str(row[0]) for row in rows)

    # -- inlet cursors ----------------------------------------------------------------------

    def _do_enqueue_with_cursors(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
        cursors: Mapping[str, CursorWrite],
    ) -> list[int]:
        return self._do_enqueue(link, codec, encoded, targets, now, cursors)

    def _do_read_cursors(
        self, link: str | None, inlet: str | None
    ) -> list[tuple[str, str, str, int, float]]:
        with self._read() as conn:
            try:
                rows = conn.execute(
                    "SELECT link, inlet, value, version, updated_at FROM cursors"
                    " WHERE (?1 IS NULL OR link = ?1) AND (?2 IS NULL OR inlet = ?2)"
                    " ORDER BY link, inlet",
                    (link, inlet),
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # no cursor was ever written to this file
                raise
        return [(str(a), str(b), str(c), int(d), float(e)) for a, b, c, d, e in rows]

    def _do_write_cursors(self, link: str, cursors: Mapping[str, CursorWrite], now: float) -> None:
        with self._write() as conn:
            self._write_cursors(conn, link, cursors, now)

    @staticmethod
    def _write_cursors(
        conn: sqlite3.Connection, link: str, cursors: Mapping[str, CursorWrite], now: float
    ) -> None:
        """Inside a write transaction: check every version, then write (see the base class)."""
        conn.execute(CURSORS)
        versions = {}
        for inlet, write in cursors.items():
            row = conn.execute(
                "SELECT version FROM cursors WHERE link = ? AND inlet = ?", (link, inlet)
            ).fetchone()
            versions[inlet] = check_version(link, inlet, row[0] if row else 0, write)
        for inlet, write in cursors.items():
            if write.text is None:
                conn.execute("DELETE FROM cursors WHERE link = ? AND inlet = ?", (link, inlet))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                    (link, inlet, write.text, versions[inlet], now),
                )

    def _do_close(self) -> None:
        self._group.settle()  # commit the acks posted to a commit
        own = id(getattr(self._local, "conn", None))
        with self._connections_lock:
            self._closed = True
            # wait (bounded) for statements of other threads; a connection still busy then
            # is closed by its thread when its statement ends (_using)
            self._idle.wait_for(lambda: set(self._busy) <= {own}, self.busy_timeout + 5.0)
            for key, (_, conn) in list(self._connections.items()):
                if key not in self._busy:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()  # the last one checkpoints, which fsyncs NORMAL commits
                    del self._connections[key]
        # A write under way closes them when it ends (_write); the file lock stays held
        # until then only if the write outlasts this wait.
        if self._lock.acquire(timeout=self.busy_timeout + 5.0):
            try:
                self._close_writer()
            finally:
                self._lock.release()
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None

    def __repr__(self) -> str:
        return f"SqliteQueue({str(self.path)!r})"
