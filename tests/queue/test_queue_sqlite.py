"""What only the durable SqliteQueue promises: files, reopening, schema, one process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from databay_bus import Record
from databay_bus.config.loader import loads
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
    """Purging the newest record does not free its number."""
    queue = make_sqlite(retention=0)
    (first,) = queue.enqueue("L", recs(1), [["a"]])
    queue.ack("L", "a", [first])
    clock.advance(1)
    assert queue.purge() == 1 and queue.stats().records == 0
    queue.close()
    (second,) = make_sqlite().enqueue("L", recs(2), [["a"]])
    assert int(str(second).rsplit("-")[1]) > int(str(first).rsplit("-")[1])


_NORMAL, _FULL = 1, 2


def _commits(queue: SqliteQueue) -> list[int]:
    """From now on, the synchronous setting of each commit, in order (every write goes
    through the queue's one writer connection)."""
    seen: list[int] = []
    conn = queue._writing(True)
    setting = [int(conn.execute("PRAGMA synchronous").fetchone()[0])]

    def traced(sql: str) -> None:
        if sql.startswith("PRAGMA synchronous="):
            setting[0] = _FULL if sql.endswith("FULL") else _NORMAL
        elif sql == "COMMIT":
            seen.append(setting[0])

    conn.set_trace_callback(traced)
    return seen


def test_wal_and_full_sync(persistent_queue: SqliteQueue) -> None:
    """The file is in WAL mode and enqueue commits fsync (synchronous=FULL)."""
    with sqlite3.connect(persistent_queue.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    commits = _commits(persistent_queue)
    persistent_queue.enqueue("L", recs(1), [["a"]])
    assert commits == [_FULL]
    assert persistent_queue.integrity_check() == "ok"


def test_acks_commit_without_fsync_until_the_next_enqueue(
    make_sqlite: Callable[..., SqliteQueue], clock: FakeClock
) -> None:
    """ack_sync='normal' (default): ack and fail use NORMAL; enqueue is FULL again, and an
    ack more than a second after the first unsynced one is FULL itself."""
    queue = make_sqlite()
    assert queue.ack_sync == "normal"
    commits = _commits(queue)
    ids = queue.enqueue("L", recs(1, 2, 3), [["a"]] * 3)
    queue.ack("L", "a", ids[:1])
    queue.fail("L", "a", ids[1:2], "x", lambda n: 1.0)
    assert commits == [_FULL, _NORMAL, _NORMAL]
    clock.advance(1.5)
    queue.ack("L", "a", ids[2:])  # the window is over: this commit syncs everything
    queue.ack("L", "a", ids[1:2])
    queue.enqueue("L", recs(4), [["a"]])
    assert commits[3:] == [_FULL, _NORMAL, _FULL]


def test_ack_sync_full_fsyncs_every_commit(make_sqlite: Callable[..., SqliteQueue]) -> None:
    queue = make_sqlite(ack_sync="full")
    commits = _commits(queue)
    ids = queue.enqueue("L", recs(1, 2), [["a"]] * 2)
    queue.ack("L", "a", ids[:1])
    queue.fail("L", "a", ids[1:], "x", lambda n: None)
    assert commits == [_FULL] * 3


@pytest.mark.parametrize("value", ["NORMAL", "off", None, 1])
def test_bad_ack_sync_refused(make_sqlite: Callable[..., SqliteQueue], value: object) -> None:
    with pytest.raises(ConfigurationError, match="ack_sync must be 'normal' or 'full'"):
        make_sqlite(ack_sync=value)


def _rows(queue: SqliteQueue, table: str) -> int:
    count: int = queue._conn().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return count


def test_a_batch_is_one_chunk_and_one_span_per_outlet(persistent_queue: SqliteQueue) -> None:
    """What makes large transfers cheap: rows per enqueue and per ack, not per record."""
    queue = persistent_queue
    ids = queue.enqueue("L", recs(*range(2500)), [["a", "b"]] * 2500)
    assert (_rows(queue, "chunks"), _rows(queue, "waiting")) == (3, 6)  # 1000 records a chunk
    assert queue.ack("L", "a", ids) == 2500
    assert (_rows(queue, "waiting"), _rows(queue, "settled")) == (3, 3)
    assert [r.payload for r in queue.due("L", "b", 1500)] == list(range(1500))


def test_chunks_are_bounded_in_bytes_too(persistent_queue: SqliteQueue) -> None:
    """Records past 1 MiB of data start a new chunk; one bigger record is a chunk alone."""
    queue = persistent_queue
    big, small = "x" * (1 << 20), "y" * 1000
    payloads = [small, big, small, small, big]
    ids = queue.enqueue("L", recs(*payloads), [["a"]] * 5)
    assert _rows(queue, "chunks") == 4  # [small] [big] [small, small] [big]
    assert [r.payload for r in queue.due("L", "a", 10)] == payloads
    assert queue.ack("L", "a", ids[1:3]) == 2
    assert [r.payload for r in queue.due("L", "a", 10)] == [small, small, big]


def test_partial_changes_split_spans_and_keep_each_record_apart(
    persistent_queue: SqliteQueue, clock: FakeClock
) -> None:
    """Acking, failing, replaying and dropping parts of a batch touch only those records."""
    queue = persistent_queue
    ids = queue.enqueue("L", recs(*range(10)), [["a"]] * 10)
    assert queue.ack("L", "a", ids[2:4] + ids[7:8]) == 3
    assert queue.fail("L", "a", ids[4:6], "x", lambda n: None) == (0, 2)
    assert queue.fail("L", "a", ids[0:1], "y", lambda n: 30.0) == (1, 0)
    assert [r.payload for r in queue.due("L", "a", 10)] == [1, 6, 8, 9]
    clock.advance(30)
    assert [r.payload for r in queue.due("L", "a", 3)] == [0, 1, 6]
    assert [d.id for d in queue.dead_letters()] == ids[4:6]
    assert queue.replay(ids=[str(ids[5])]) == 1
    assert queue.drop(ids=[str(ids[4])]) == 1
    assert queue.ack("L", "a", ids) == 6  # 0, 1, 5, 6, 8, 9
    stats = queue.stats()
    assert (stats.pending(), stats.dead(), stats.records) == (0, 0, 9)
    assert queue.integrity_check() == "ok"


def test_a_chunk_goes_when_its_last_delivery_goes(
    make_sqlite: Callable[..., SqliteQueue], clock: FakeClock
) -> None:
    queue = make_sqlite(retention=10)
    ids = queue.enqueue("L", recs(1, 2, 3), [["a", "b"]] * 3)
    queue.ack("L", "a", ids)
    queue.ack("L", "b", ids[:1])
    clock.advance(11)
    assert queue.purge() == 4
    assert _rows(queue, "chunks") == 1 and queue.stats().records == 2
    assert [r.payload for r in queue.due("L", "b", 10)] == [2, 3]
    queue.ack("L", "b", ids[1:])
    clock.advance(11)
    assert queue.purge() == 2
    assert _rows(queue, "chunks") == 0 and queue.stats().records == 0


def test_routed_records_and_records_without_outlets(persistent_queue: SqliteQueue) -> None:
    """Records of one enqueue going to different outlets; a record going nowhere gets an
    id that is never used again, and stores nothing."""
    queue = persistent_queue
    ids = queue.enqueue("L", recs(0, 1, 2, 3, 4), [["a"], ["b"], ["a", "b"], [], ["a"]])
    assert [r.id for r in queue.due("L", "a", 10)] == [ids[0], ids[2], ids[4]]
    assert [r.id for r in queue.due("L", "b", 10)] == [ids[1], ids[2]]
    assert queue.stats().records == 4 and queue.waiting("L") == 4
    (last,) = queue.enqueue("L", recs(5), [[]])
    queue.close()
    again = SqliteQueue(queue.path)
    try:
        (after,) = again.enqueue("L", recs(6), [["a"]])
        assert int(str(after).rsplit("-")[1]) == int(str(last).rsplit("-")[1]) + 1
    finally:
        again.close()


# The version 1 schema, as databay_bus wrote it before schema 2.
_SCHEMA_V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, link TEXT NOT NULL, codec TEXT NOT NULL,
    data BLOB NOT NULL, enqueued_at REAL NOT NULL
);
CREATE TABLE deliveries (
    record_id INTEGER NOT NULL, outlet TEXT NOT NULL, link TEXT NOT NULL,
    state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due_at REAL NOT NULL,
    updated_at REAL NOT NULL, last_error TEXT, PRIMARY KEY (record_id, outlet)
) WITHOUT ROWID;
CREATE INDEX deliveries_waiting ON deliveries (link, outlet, record_id) WHERE state < 2;
CREATE INDEX deliveries_settled ON deliveries (state, updated_at) WHERE state >= 2;
INSERT INTO schema_version VALUES (1);
INSERT INTO meta VALUES ('queue_id', 'c0ffee000001');
"""


def test_a_version_1_file_is_migrated(tmp_path: Path, clock: FakeClock) -> None:
    """Every record and delivery of a schema-1 file keeps its id, state, attempts and
    error; numbers go on after the highest ever used (even a purged one)."""
    path = tmp_path / "old.db"
    now = clock.time()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA_V1)
        for number in (1, 2, 3, 4):
            conn.execute(
                "INSERT INTO records VALUES (?, 'L', 'json', ?, ?)",
                (number, f'[{number * 10},{{"__inlet__":"I"}}]'.encode(), now - number),
            )
        conn.execute("INSERT INTO records VALUES (9, 'L', 'json', '[9,{}]', ?)", (now,))
        conn.execute("DELETE FROM records WHERE id = 9")  # purged: 9 stays used
        conn.executemany(
            "INSERT INTO deliveries VALUES (?, ?, 'L', ?, ?, ?, ?, ?)",
            [
                (1, "a", 2, 0, now, now, None),  # delivered
                (1, "b", 0, 0, now, now, None),  # pending
                (2, "a", 1, 2, now + 60, now, "ConnectionError: down"),  # retrying
                (3, "a", 3, 5, now, now, "ValueError: bad"),  # dead
                (4, "a", 0, 0, now, now, None),
            ],
        )
    queue = SqliteQueue(path, clock=clock)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 2
        assert queue.queue_id == "c0ffee000001"
        assert [(r.id, r.payload) for r in queue.due("L", "a", 10)] == [("c0ffee000001-4", 40)]
        assert [r.payload for r in queue.due("L", "b", 10)] == [10]
        (letter,) = queue.dead_letters()
        assert (letter.id, letter.attempts, letter.last_error) == (
            "c0ffee000001-3",
            5,
            "ValueError: bad",
        )
        assert letter.record is not None and letter.record.payload == 30
        stats = queue.stats()
        assert stats.records == 4 and stats.pending("L", "a") == 2
        by_outlet = {s.outlet: s for s in stats.outlets}
        assert by_outlet["a"].delivered == 1 and by_outlet["a"].retrying == 1
        clock.advance(60)
        assert [r.payload for r in queue.due("L", "a", 10)] == [20, 40]
        assert queue.ack("L", "a", ["c0ffee000001-2", "c0ffee000001-4"]) == 2
        assert queue.enqueue("L", recs(5), [["a"]]) == ["c0ffee000001-10"]
        assert queue.integrity_check() == "ok"
    finally:
        queue.close()


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


def test_ack_sync_in_a_pipeline_file(tmp_path: Path) -> None:
    """The config loader hands [queue] keys to SqliteQueue, ack_sync included."""
    text = f"""
[queue]
path = "{tmp_path / "pipeline.db"}"
ack_sync = "full"

[[links]]
tags = ["prices"]
interval = 60
inlets = ["queue_fakes.CountingInlet"]
outlets = [{{type = "queue_fakes.ListOutlet", name = "out"}}]
"""
    pipeline = loads(text)
    try:
        (queue,) = pipeline.queues
        assert isinstance(queue, SqliteQueue) and queue.ack_sync == "full"
    finally:
        pipeline.close()


def _hold_first_commit(
    queue: SqliteQueue, later: Exception | None = None
) -> tuple[threading.Event, list[list[str]]]:
    """Make the queue's next group commit wait for the returned event (and the groups after
    it raise ``later``, if given); the list gets the ``doing`` of each group's jobs."""
    commit_group = queue._commit_group
    release = threading.Event()
    groups: list[list[str]] = []

    def slow_commit(jobs: list[Any]) -> None:
        groups.append([job.doing for job in jobs])
        if len(groups) == 1:
            assert release.wait(10)
        elif later is not None:
            raise later
        commit_group(jobs)

    queue._group._commit = slow_commit
    return release, groups


def test_enqueues_waiting_for_a_commit_share_the_next_one(
    persistent_queue: SqliteQueue, wait_until: Callable[..., None]
) -> None:
    """Group commit: enqueues arriving while one commits go together in the next
    transaction; each returns its own ids once that transaction is committed."""
    queue = persistent_queue
    release, groups = _hold_first_commit(queue)
    results: dict[int, list[str | None]] = {}

    def enqueue(n: int) -> None:
        results[n] = queue.enqueue("L", recs(n), [["a"]])

    threads = [threading.Thread(target=enqueue, args=(n,)) for n in range(6)]
    threads[0].start()
    wait_until(lambda: len(groups) == 1, message="the first commit began")
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: len(queue._group._waiting) == 5, message="five enqueues waiting")
    assert results == {}  # nothing returned before its commit
    release.set()
    for thread in threads:
        thread.join(10)
    assert [len(group) for group in groups] == [1, 5]
    due = {record.payload: record.id for record in queue.due("L", "a", 10)}
    assert due == {n: ids[0] for n, ids in results.items()}


def test_a_failing_enqueue_in_a_group_leaves_the_others_stored(
    persistent_queue: SqliteQueue,
) -> None:
    from databay_bus.queue._group_commit import Job

    queue = persistent_queue
    stores: list[Callable[[sqlite3.Connection], list[int]]] = []
    run = queue._group.run
    queue._group.run = lambda job: stores.append(job.work) or []  # type: ignore[method-assign]
    queue.enqueue("L", recs("first"), [["a"]])
    queue.enqueue("L", recs("second"), [["a"]])
    queue._group.run = run  # type: ignore[method-assign]

    def bad(conn: sqlite3.Connection) -> list[int]:
        conn.execute("INSERT INTO waiting (link) VALUES ('half')")  # violates NOT NULL
        return [0]

    jobs = [Job(stores[0]), Job(bad), Job(stores[1])]
    queue._commit_group(jobs)
    assert isinstance(jobs[1].error, QueueError)
    assert jobs[0].result is not None and jobs[2].result is not None
    assert [r.payload for r in queue.due("L", "a", 10)] == ["first", "second"]
    assert [r.id for r in queue.due("L", "a", 10)] == [
        f"{queue.queue_id}-{n}" for n in (*jobs[0].result, *jobs[2].result)
    ]


def test_with_ack_sync_full_an_ack_waits_for_the_commit_it_shares(
    make_sqlite: Callable[..., SqliteQueue], wait_until: Callable[..., None]
) -> None:
    """Acks join group commits: an ack and another link's enqueue that wait for the same
    commit share it; with ack_sync="full" neither returns before it."""
    queue = make_sqlite(ack_sync="full")
    (first,) = queue.enqueue("L", recs("l"), [["a"]])
    queue.due("L", "a", 10)
    release, groups = _hold_first_commit(queue)
    results: dict[str, object] = {}
    threads = [
        threading.Thread(target=lambda: queue.enqueue("M", recs("m1"), [["b"]])),
        threading.Thread(target=lambda: results.update(acked=queue.ack("L", "a", [first]))),
        threading.Thread(
            target=lambda: results.update(ids=queue.enqueue("M", recs("m2"), [["b"]]))
        ),
    ]
    threads[0].start()
    wait_until(lambda: len(groups) == 1, message="the first commit began")
    for waiting, thread in enumerate(threads[1:], start=1):
        thread.start()
        wait_until(lambda n=waiting: len(queue._group._waiting) == n, message="jobs waiting")
    assert results == {}  # nothing returned before its commit
    release.set()
    for thread in threads:
        thread.join(10)
    assert groups == [["storing records"], ["recording a delivery", "storing records"]]
    assert results["acked"] == 1
    queue.close()
    again = make_sqlite()
    assert again.due("L", "a", 10) == []
    assert [r.payload for r in again.due("M", "b", 10)] == ["m1", "m2"]


def test_an_ack_posted_while_another_thread_commits_goes_with_the_next_group(
    make_sqlite: Callable[..., SqliteQueue], wait_until: Callable[..., None]
) -> None:
    """By default an ack of the batch due() handed out does not wait for a commit under
    way: it returns its count at once and is written by the next group; due() of its link
    waits for it (never hands the batch out again), and it is in the file after close."""
    queue = make_sqlite()
    (first,) = queue.enqueue("L", recs("l"), [["a"]])
    queue.due("L", "a", 10)
    release, groups = _hold_first_commit(queue)
    results: dict[str, object] = {}
    enqueue = threading.Thread(target=lambda: queue.enqueue("M", recs("m1"), [["b"]]))
    enqueue.start()
    wait_until(lambda: len(groups) == 1, message="the first commit began")
    assert queue.ack("L", "a", [first]) == 1  # returns while the first commit is held
    assert len(queue._group._waiting) == 1
    reader = threading.Thread(target=lambda: results.update(due=queue.due("L", "a", 10)))
    reader.start()
    wait_until(lambda: len(queue._group._waiting) == 2, message="due() waits for the ack")
    assert results == {}
    release.set()
    for thread in (enqueue, reader):
        thread.join(10)
    assert groups == [["storing records"], ["recording a delivery", "reading"]]
    assert results["due"] == []
    assert queue.stats().outlets[0].delivered == 1
    queue.close()
    again = make_sqlite()
    assert again.due("L", "a", 10) == []
    assert again.stats().outlets[0].delivered == 1


def test_close_commits_acks_posted_to_a_commit(
    make_sqlite: Callable[..., SqliteQueue],
) -> None:
    """A posted ack whose commit no thread was left to lead (its leader's thread was
    interrupted) is written by close(), and by the next write before that."""
    queue = make_sqlite()
    group = queue._group
    for n in range(2):
        (number,) = queue.enqueue("L", recs(n), [["a"]])
        assert [r.id for r in queue.due("L", "a", 10)] == [number]
        with group._mutex:
            group._busy = True  # as if another thread were committing
        assert queue.ack("L", "a", [number]) == 1
        with group._mutex:
            group._busy = False  # ... and its thread was interrupted before the next group
        if n == 0:
            queue.enqueue("M", recs("m"), [["b"]])  # the next write takes the ack along
            assert group._waiting == [] and group._posted == {}
    assert len(group._waiting) == 1
    queue.close()
    again = make_sqlite()
    assert again.stats().outlets[0].delivered == 2


def _jobs_of(queue: SqliteQueue, calls: Callable[[], object]) -> list[Any]:
    """The group-commit jobs that ``calls`` submit, caught instead of run."""
    jobs: list[Any] = []
    run, post = queue._group.run, queue._group.post
    queue._group.run = lambda job: jobs.append(job) or []  # type: ignore[method-assign]
    queue._group.post = lambda job, key: False  # type: ignore[method-assign]
    try:
        calls()
    finally:
        queue._group.run, queue._group.post = run, post  # type: ignore[method-assign]
    return jobs


def test_a_group_of_many_writes_goes_in_multi_row_pieces(
    persistent_queue: SqliteQueue,
) -> None:
    """70 acks and 70 enqueues committed as one group: their rows are written 64 + 4 + 2
    at a time, and every write is in the file as if each had committed alone."""
    queue = persistent_queue
    links = [f"L{n}" for n in range(70)]
    first = {link: queue.enqueue(link, recs(f"{link}-1"), [["a"]])[0] for link in links}
    for link in links:
        queue.due(link, "a", 10)
    jobs = _jobs_of(
        queue,
        lambda: [
            (queue.ack(link, "a", [first[link]]), queue.enqueue(link, recs(f"{link}-2"), [["a"]]))
            for link in links
        ],
    )
    statements: list[str] = []
    queue._writing(True).set_trace_callback(statements.append)
    queue._commit_group(jobs)
    assert [job.error for job in jobs] == [None] * 140
    inserts = [sql for sql in statements if sql.startswith("INSERT INTO chunks")]
    assert [sql.count("),(") + 1 for sql in inserts] == [64, 4, 2]
    stats = queue.stats()
    assert sum(o.delivered for o in stats.outlets) == 70
    assert sum(o.pending for o in stats.outlets) == 70
    for link in links:
        assert [r.payload for r in queue.due(link, "a", 10)] == [f"{link}-2"]


def test_a_write_that_reads_first_sees_the_rows_of_earlier_writes_in_its_group(
    persistent_queue: SqliteQueue,
) -> None:
    """Two enqueues of a link whose state this process does not know, in one group: the
    second looks up what waits and must see the first one's rows, held back until the
    commit (else due() would believe only the second one's records wait)."""
    queue = persistent_queue
    jobs = _jobs_of(
        queue,
        lambda: [queue.enqueue("L", recs(n), [["a"]]) for n in (1, 2)],
    )
    queue._commit_group(jobs)
    assert [r.payload for r in queue.due("L", "a", 10)] == [1, 2]


def test_a_posted_ack_whose_commit_fails_is_logged_and_its_batch_comes_again(
    make_sqlite: Callable[..., SqliteQueue],
    wait_until: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = make_sqlite()
    (number,) = queue.enqueue("L", recs("x"), [["a"]])
    queue.due("L", "a", 10)
    commit_group = queue._commit_group
    release, groups = _hold_first_commit(queue, later=QueueError("disk on fire"))
    writer = threading.Thread(target=lambda: queue.enqueue("M", recs("m"), [["b"]]))
    writer.start()
    wait_until(lambda: len(groups) == 1, message="the first commit began")
    assert queue.ack("L", "a", [number]) == 1  # posted
    release.set()
    writer.join(10)
    # the writer's thread committed the posted ack, which failed
    assert groups == [["storing records"], ["recording a delivery"]]
    assert "recording a delivery failed after the call returned" in caplog.text
    assert "disk on fire" in caplog.text
    queue._group._commit = commit_group
    assert [r.id for r in queue.due("L", "a", 10)] == [number]


def test_a_thread_that_stops_waiting_for_its_commit_leaves_the_group_working(
    persistent_queue: SqliteQueue,
) -> None:
    """A waiting thread interrupted (KeyboardInterrupt) drops its job, or passes on the
    lead it was just handed: the next writes still commit."""
    from databay_bus.queue._group_commit import Job

    group = persistent_queue._group
    with group._mutex:
        group._busy = True  # a commit is under way
    waiting = Job(lambda conn, *rest: [], doing="a waiting job")
    waiting.wake = threading.Lock()
    waiting.wake.acquire()
    group._waiting.append(waiting)
    group._abandon(waiting)  # its thread was interrupted before its turn
    assert group._waiting == []
    promoted, following = Job(lambda conn, *rest: []), Job(lambda conn, *rest: [])
    following.wake = threading.Lock()
    following.wake.acquire()
    group._waiting.append(following)
    promoted.lead = True  # handed the lead, but its thread was interrupted
    group._abandon(promoted)
    assert following.lead and following.wake.acquire(timeout=10)  # the lead went on
    group._lead(following)
    assert not group._busy
    ids = persistent_queue.enqueue("L", recs(1), [["a"]])
    assert [r.id for r in persistent_queue.due("L", "a", 10)] == ids


def test_a_failing_job_in_a_group_of_enqueues_and_acks_rolls_back_only_itself(
    persistent_queue: SqliteQueue,
) -> None:
    from databay_bus.queue._group_commit import Job

    queue = persistent_queue
    (first,) = queue.enqueue("L", recs("x"), [["a"]])
    jobs: list[Job] = []
    run = queue._group.run
    queue._group.run = lambda job: jobs.append(job) or []  # type: ignore[method-assign]
    queue.enqueue("L", recs("y"), [["a"]])
    queue.ack("L", "a", [first])
    queue._group.run = run  # type: ignore[method-assign]

    def bad(conn: sqlite3.Connection) -> int:
        conn.execute("DELETE FROM waiting")  # undone with its savepoint
        raise RuntimeError("half-way")

    store, ack = jobs
    group = [store, Job(bad, False, "recording a delivery"), ack]
    commits = _commits(queue)
    queue._commit_group(group)
    assert isinstance(group[1].error, RuntimeError)
    assert store.error is None and ack.error is None and ack.result == 1
    assert commits == [_FULL]  # a group holding an enqueue is fsynced
    assert [r.payload for r in queue.due("L", "a", 10)] == ["y"]
    assert queue.stats().outlets[0].delivered == 1


def test_due_reads_nothing_while_this_process_knows_what_waits(
    persistent_queue: SqliteQueue, clock: FakeClock
) -> None:
    """Right after an enqueue, an outlet with nothing else waiting gets exactly what was
    stored, without a read; a failure, a limit below it, or more waiting read the file."""
    queue = persistent_queue
    ids = queue.enqueue("L", recs(1, 2), [["a", "b"]] * 2)
    statements: list[str] = []
    queue._conn().set_trace_callback(statements.append)  # due() reads on this connection
    assert [r.id for r in queue.due("L", "a", 10)] == ids
    assert statements == []
    assert [r.payload for r in queue.due("L", "b", 1)] == [1]  # over the limit: read
    assert statements
    queue.ack("L", "a", ids)
    statements.clear()
    assert queue.due("L", "a", 10) == []
    assert statements == []
    queue.fail("L", "b", ids[:1], "down", lambda n: 5.0)
    statements.clear()
    assert [r.payload for r in queue.due("L", "b", 10)] == [2]  # 1 waits for its retry
    assert statements
    clock.advance(6)
    assert [r.payload for r in queue.due("L", "b", 10)] == [1, 2]
    queue.ack("L", "b", ids)
    more = queue.enqueue("L", recs(3), [["b"]])
    statements.clear()
    assert [r.id for r in queue.due("L", "b", 10)] == more
    assert statements == []


def test_records_of_a_commit_that_failed_are_never_handed_out(
    persistent_queue: SqliteQueue,
) -> None:
    from databay_bus.queue._group_commit import Job

    queue = persistent_queue
    queue.ack("L", "a", queue.enqueue("L", recs(0), [["a"]]))  # nothing waits, and it knows
    jobs: list[Job] = []
    run = queue._group.run
    queue._group.run = lambda job: jobs.append(job) or []  # type: ignore[method-assign]
    queue.enqueue("L", recs(1), [["a"]])
    queue._group.run = run  # type: ignore[method-assign]

    def store_then_fail(conn: sqlite3.Connection) -> None:
        jobs[0].work(conn)
        raise RuntimeError("the commit never happens")

    with pytest.raises(RuntimeError):
        queue._commit_group([Job(store_then_fail)])
    assert queue.due("L", "a", 10) == []
    assert queue.waiting("L") == 0


def test_writes_after_close_are_refused(make_sqlite: Callable[..., SqliteQueue]) -> None:
    """Writes share one connection, kept open between them: close() closes it, and a later
    write is refused instead of reopening it."""
    queue = make_sqlite()
    ids = queue.enqueue("L", recs(1), [["a"]])
    queue.close()
    assert queue._writer is None
    with pytest.raises(QueueError, match="is closed"):
        queue.enqueue("L", recs(2), [["a"]])
    with pytest.raises(QueueError, match="is closed"):
        queue.ack("L", "a", ids)


def test_close_while_other_threads_read_does_not_crash(tmp_path: Path) -> None:
    """close() waits for statements of other threads instead of closing their connections
    under them (that crashed the interpreter: a web page read stats while a reload closed
    the queue). In a subprocess, since the failure is a segmentation fault."""
    script = textwrap.dedent(
        """
        import sys, threading
        from databay_bus.errors import QueueError
        from databay_bus.queue import SqliteQueue

        for round in range(60):
            queue = SqliteQueue(f"{sys.argv[1]}/q{round}.sqlite3")
            reading = threading.Semaphore(0)

            def read():
                queue.stats()
                reading.release()  # this reader has its connection and goes on reading
                while True:
                    try:
                        queue.stats()
                    except QueueError:  # closed: the only way out
                        return

            readers = [threading.Thread(target=read) for _ in range(4)]
            for reader in readers:
                reader.start()
            for reader in readers:
                reading.acquire()
            queue.close()
            for reader in readers:
                reader.join()
        print("closed 60 queues under readers")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed 60 queues under readers" in done.stdout
