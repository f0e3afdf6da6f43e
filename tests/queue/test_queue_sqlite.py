"""What only the durable SqliteQueue promises: files, reopening, schema, one process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from databay_bus import Record
from databay_bus.errors import ConfigurationError, QueueError, QueueLockedError
from databay_bus.queue import SqliteQueue
from databay_bus.testing import FakeClock


def recs(*payloads: object) -> list[Record]:
    return [Record(p, {"__inlet__": "I"}) for p in payloads]


def test_state_survives_reopen(make_sqlite: Callable[..., SqliteQueue]) -> None:
    """Records, delivery states, attempts and the queue id are all in the file."""
    queue = make_sqlite()
    ids = queue.enqueue("L", recs(1, 2, 3), [["a", "b"]] * 3)
    queue.ack("L", "a", ids[:2])
    queue.fail("L", "b", ids[:1], "x", lambda n: None)
    queue_id = queue.queue_id
    queue.close()
    again = make_sqlite()
    assert again.queue_id == queue_id
    assert [r.payload for r in again.due("L", "a", 10)] == [3]
    assert [r.id for r in again.due("L", "b", 10)] == ids[1:]
    assert again.dead_letters()[0].id == ids[0]


def test_ids_never_reused_after_purge(
    make_sqlite: Callable[..., SqliteQueue], clock: FakeClock
) -> None:
    """AUTOINCREMENT: purging the newest record does not free its number."""
    queue = make_sqlite(retention=0)
    (first,) = queue.enqueue("L", recs(1), [["a"]])
    queue.ack("L", "a", [first])
    clock.advance(1)
    assert queue.purge() == 1 and queue.stats().records == 0
    queue.close()
    (second,) = make_sqlite().enqueue("L", recs(2), [["a"]])
    assert int(str(second).rsplit("-")[1]) > int(str(first).rsplit("-")[1])


def test_wal_and_full_sync(persistent_queue: SqliteQueue) -> None:
    """The file is in WAL mode and every connection fsyncs on commit."""
    with sqlite3.connect(persistent_queue.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert persistent_queue._conn().execute("PRAGMA synchronous").fetchone()[0] == 2
    assert persistent_queue.integrity_check() == "ok"


def test_newer_schema_refused(make_sqlite: Callable[..., SqliteQueue], tmp_path: Path) -> None:
    make_sqlite().close()
    with sqlite3.connect(tmp_path / "queue.db") as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(QueueError, match="schema version 99"):
        make_sqlite()


def test_foreign_database_refused(make_sqlite: Callable[..., SqliteQueue], tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(QueueError, match="not a databay_bus queue"):
        make_sqlite("other.db")
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(QueueError, match="not a queue file"):
        make_sqlite("junk.db")


def test_memory_path_refused() -> None:
    with pytest.raises(ConfigurationError, match="MemoryQueue"):
        SqliteQueue(":memory:")


def test_second_instance_in_process_refused(make_sqlite: Callable[..., SqliteQueue]) -> None:
    """Links in one process share one instance; a second one is told so."""
    first = make_sqlite()
    with pytest.raises(QueueLockedError, match=f"process {os.getpid()}"):
        make_sqlite()
    first.close()
    make_sqlite()  # released on close


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from databay_bus.queue import SqliteQueue
    q = SqliteQueue(sys.argv[1])
    print("open", flush=True)
    time.sleep(60)
    """
)


def test_second_process_refused_until_holder_dies(tmp_path: Path) -> None:
    """Another process holding the file gets QueueLockedError; its SIGKILL frees the file."""
    path = tmp_path / "queue.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(QueueLockedError, match=str(holder.pid)):
            SqliteQueue(path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    queue = SqliteQueue(path)
    try:
        assert queue.integrity_check() == "ok"
    finally:
        queue.close()


def test_connections_of_ended_threads_are_closed(persistent_queue: SqliteQueue) -> None:
    """Per-thread connections do not pile up when threads come and go."""
    import threading

    for _ in range(20):
        thread = threading.Thread(target=lambda: persistent_queue.stats())
        thread.start()
        thread.join()
    persistent_queue.stats()
    assert len(persistent_queue._connections) <= 3
