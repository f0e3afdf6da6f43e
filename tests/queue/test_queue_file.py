"""The queue file and its lock (issue 14): real-file locking, owner-only files, read-only
inspection that changes nothing, storage failures as named QueueErrors, argument checks."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import databay_bus.queue.sqlite as sqlite_module
from databay_bus import Record
from databay_bus.errors import (
    ConfigurationError,
    QueueCorruptError,
    QueueKeyError,
    QueueLockedError,
    QueueReadOnlyError,
    QueueStorageError,
)
from databay_bus.queue import DeliveryState, MemoryQueue, RecordQueue, RetryPolicy, SqliteQueue
from databay_bus.records.codecs import PickleCodec
from databay_bus.testing import FakeClock

REPO = Path(__file__).resolve().parents[2]


def recs(*payloads: object) -> list[Record]:
    return [Record(p, {"__inlet__": "I"}) for p in payloads]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


# -- 1. the lock is on the real file ------------------------------------------------------------


def test_a_symlink_finds_the_same_lock(
    make_sqlite: Callable[..., SqliteQueue], tmp_path: Path
) -> None:
    """Opening through a symlink is the same file: refused while the real path is held."""
    held = make_sqlite("queue.db")
    (tmp_path / "alias.db").symlink_to(tmp_path / "queue.db")
    with pytest.raises(QueueLockedError, match="in use by process"):
        SqliteQueue(tmp_path / "alias.db")
    held.close()
    through_link = SqliteQueue(tmp_path / "alias.db")
    try:
        assert through_link.real_path == (tmp_path / "queue.db").resolve()
        assert not (tmp_path / "alias.db.lock").exists()
    finally:
        through_link.close()


_HOLDER = """
    import sys, time
    from databay_bus.queue import SqliteQueue
    queue = SqliteQueue(sys.argv[1])
    print("open", flush=True)
    time.sleep(60)
"""


def test_a_process_holding_the_file_through_a_symlink_until_sigkill(tmp_path: Path) -> None:
    """Another process opens through a symlink: the real name is refused until its SIGKILL."""
    (tmp_path / "alias.db").symlink_to(tmp_path / "queue.db")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLDER), str(tmp_path / "alias.db")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(QueueLockedError, match=f"process {holder.pid} on"):
            SqliteQueue(tmp_path / "queue.db")
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    with SqliteQueue(tmp_path / "queue.db") as queue:
        assert queue.integrity_check() == "ok"


def test_a_hard_linked_file_is_refused(
    make_sqlite: Callable[..., SqliteQueue], tmp_path: Path
) -> None:
    """Two names for one file would get two -wal files and two locks: refused by either."""
    make_sqlite("queue.db").close()
    os.link(tmp_path / "queue.db", tmp_path / "other.db")
    for name in ("queue.db", "other.db"):
        with pytest.raises(QueueStorageError, match="2 hard links"):
            SqliteQueue(tmp_path / name)


# -- 6. owner-only files ------------------------------------------------------------------------


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_queue_files_are_owner_only_by_default(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    try:
        queue.enqueue("L", recs(1), [["a"]])
        modes = _modes(tmp_path)
        assert set(modes) == {"q.db", "q.db-wal", "q.db-shm", "q.db.lock"}
        assert set(modes.values()) == {0o600}
    finally:
        queue.close()


@pytest.mark.usefixtures("umask_022")
def test_file_mode_option(tmp_path: Path) -> None:
    with SqliteQueue(tmp_path / "shared.db", file_mode=0o640) as queue:
        queue.enqueue("L", recs(1), [["a"]])
        assert set(_modes(tmp_path).values()) == {0o640}
    (tmp_path / "umask").mkdir()
    with SqliteQueue(tmp_path / "umask" / "q.db", file_mode=None):
        assert _modes(tmp_path / "umask")["q.db"] == 0o644


@pytest.mark.parametrize("mode", [0o1777, -1, "0600", 0o200, True])
def test_bad_file_mode_refused(tmp_path: Path, mode: object) -> None:
    with pytest.raises(ConfigurationError, match="file_mode"):
        SqliteQueue(tmp_path / "q.db", file_mode=mode)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


# -- 2. read-only inspection ------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_inspection_of_a_pickle_queue_changes_nothing(tmp_path: Path, clock: FakeClock) -> None:
    """Listing a queue whose codec the reader lacks names the codec and changes no row
    (the old export listed through due(), which dead-lettered every record)."""
    path = tmp_path / "q.db"
    with SqliteQueue(path, codec=PickleCodec(), clock=clock) as writer:
        ids = writer.enqueue("L", recs({1, 2}, {3}), [["a", "b"]] * 2)
        writer.fail("L", "a", ids[:1], "boom", lambda n: 60.0)
        writer.fail("L", "b", ids[1:], "bang", lambda n: None)
    before = _digest(path)
    with SqliteQueue(path, read_only=True, clock=clock) as reader:
        assert reader.read_only and reader.file_codec() == "pickle"
        assert reader.undecodable_codecs() == {"pickle"}
        waiting = reader.waiting_records()
        assert [(w.id, w.outlet, w.state) for w in waiting] == [
            (ids[0], "a", DeliveryState.FAILED),
            (ids[0], "b", DeliveryState.PENDING),
            (ids[1], "a", DeliveryState.PENDING),
        ]
        assert all(w.record is None and "'pickle'" in str(w.decode_error) for w in waiting)
        (letter,) = reader.dead_letters()
        assert letter.record is None and "'pickle'" in str(letter.decode_error)
        for change in (
            lambda: reader.enqueue("L", recs(1), [["a"]]),
            lambda: reader.due("L", "a", 10),
            lambda: reader.ack("L", "a", ids),
            lambda: reader.fail("L", "a", ids, "x", lambda n: None),
            lambda: reader.replay(),
            lambda: reader.drop(),
            lambda: reader.purge(),
        ):
            with pytest.raises(QueueReadOnlyError):
                change()
    assert _digest(path) == before
    with SqliteQueue(path, read_only=True, codec=PickleCodec()) as reader:
        assert [w.record.payload for w in reader.waiting_records() if w.record] == [
            {1, 2},
            {1, 2},
            {3},
        ]
    assert _digest(path) == before


def test_read_only_beside_a_running_writer(
    make_sqlite: Callable[..., SqliteQueue], tmp_path: Path
) -> None:
    """A writer holds the lock; a reader opens beside it and sees each commit."""
    writer = make_sqlite("q.db")
    with SqliteQueue(tmp_path / "q.db", read_only=True) as reader:
        assert reader.stats().pending() == 0
        ids = writer.enqueue("L", recs(1, 2), [["a"]] * 2)
        assert reader.stats().pending("L", "a") == 2
        writer.ack("L", "a", ids[:1])
        assert [w.record.payload for w in reader.waiting_records() if w.record] == [2]
        assert reader.queue_id == writer.queue_id
    assert writer.due("L", "a", 10)[0].id == ids[1]


def test_read_only_needs_an_existing_queue_file(tmp_path: Path) -> None:
    with pytest.raises(QueueStorageError, match="no such file"):
        SqliteQueue(tmp_path / "absent.db", read_only=True)
    assert not list(tmp_path.iterdir())


# -- 3. storage failures ------------------------------------------------------------------------


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(QueueStorageError, match=r"directory .*nowhere.* does not exist"):
        SqliteQueue(tmp_path / "nowhere" / "q.db")


def test_a_directory_is_not_a_queue_file(tmp_path: Path) -> None:
    with pytest.raises(QueueStorageError, match="is a directory"):
        SqliteQueue(tmp_path)


_DISK_FULL = """
    import resource, signal, sys
    from databay_bus import Record
    from databay_bus.errors import QueueFullError
    from databay_bus.queue import SqliteQueue

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    queue = SqliteQueue(sys.argv[1])
    queue.enqueue("L", [Record(i, {}) for i in range(10)], [["a"]] * 10)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    stored = 10
    try:
        for _ in range(100):
            queue.enqueue("L", [Record("x" * 1000, {}) for _ in range(50)], [["a"]] * 50)
            stored += 50
    except QueueFullError as exc:
        assert sys.argv[1] in str(exc) and "file size limit" in str(exc), exc
        print("full", stored, queue.stats().pending(), flush=True)
    queue.close()
"""


def test_disk_full_is_a_queue_full_error_and_loses_nothing(tmp_path: Path) -> None:
    """A file size limit (set inside the subprocess) stops an enqueue with QueueFullError
    naming the file; what was stored before stays, and nothing of the failed call is."""
    path = tmp_path / "q.db"
    done = run_python(_DISK_FULL, str(path))
    assert done.returncode == 0, done.stderr
    _, stored, pending = done.stdout.split()
    assert int(stored) == int(pending) > 10
    with SqliteQueue(path) as queue:
        assert queue.integrity_check() == "ok"
        assert queue.stats().pending() == int(stored)


_UNWRITABLE = """
    import os, sys
    from databay_bus.errors import QueuePermissionError
    from databay_bus.queue import SqliteQueue
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # root writes anything: become nobody
    for path in sys.argv[1:]:
        try:
            SqliteQueue(path)
        except QueuePermissionError as exc:
            assert path in str(exc) or os.path.basename(path) in str(exc), exc
            print("refused", type(exc).__name__, flush=True)
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's owner-only tmp tree, so another user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="databay_bus-qfile-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path)


def test_read_only_file_and_directory_are_permission_errors(shared_dir: Path) -> None:
    """A file (and a directory) the process cannot write: QueuePermissionError at open."""
    readonly_dir = shared_dir / "ro"
    readonly_dir.mkdir()
    with SqliteQueue(readonly_dir / "q.db", file_mode=0o644) as queue:
        queue.enqueue("L", recs(1), [["a"]])
    readonly_dir.chmod(0o555)
    readonly_file = shared_dir / "f.db"
    SqliteQueue(readonly_file, file_mode=0o644).close()
    readonly_file.chmod(0o444)
    (shared_dir / "f.db.lock").chmod(0o666)
    try:
        done = run_python(_UNWRITABLE, str(readonly_dir / "q.db"), str(readonly_file))
    finally:
        readonly_dir.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "QueuePermissionError"] * 2


def _corrupt(path: Path) -> None:
    """Overwrite the header and cell offsets of the ``waiting`` table's page."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='waiting'").fetchone()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(path, "r+b") as file:
        file.seek(page_size * (root[0] - 1) + 1)  # the page header after its type, and on
        file.write(b"\xff" * 64)


def _filled(path: Path) -> None:
    with SqliteQueue(path) as queue:
        queue.enqueue("L", recs(*range(50)), [["a"]] * 50)


def test_a_damaged_file_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    _filled(path)
    _corrupt(path)
    for read_only in (False, True):
        with pytest.raises(QueueCorruptError, match=r"damaged.*quick_check.*recover"):
            SqliteQueue(path, read_only=read_only)


def test_damage_found_later_refuses_new_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the quick_check size (a large file), damage found by due() is a
    QueueCorruptError, and from then on enqueue refuses instead of accepting records."""
    path = tmp_path / "q.db"
    _filled(path)
    _corrupt(path)
    monkeypatch.setattr(sqlite_module, "_QUICK_CHECK_BYTES", 0)
    with SqliteQueue(path) as queue:
        with pytest.raises(QueueCorruptError, match=r"q\.db.*malformed"):
            queue.due("L", "a", 100)
        with pytest.raises(QueueCorruptError):
            queue.enqueue("L", recs(1), [["a"]])


# -- validation gaps ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "5"])
def test_bad_busy_timeout_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SqliteQueue(tmp_path / "q.db", busy_timeout=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [("retention", math.nan), ("retention", math.inf), ("purge_interval", math.inf)],
)
def test_non_finite_retention_and_purge_interval_refused(
    make_queue: Callable[..., RecordQueue], option: str, value: float
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        make_queue(**{option: value})


def test_one_id_as_a_string_is_refused(queue: RecordQueue) -> None:
    (record_id,) = queue.enqueue("L", recs(1), [["a"]])
    assert record_id is not None
    with pytest.raises(ConfigurationError, match="ids must be a list"):
        queue.replay(ids=record_id)
    with pytest.raises(ConfigurationError, match="ids must be a list"):
        queue.drop(ids=record_id)


def test_a_target_string_is_not_a_list_of_outlets(queue: RecordQueue) -> None:
    with pytest.raises(ConfigurationError, match=r"list of outlet names.*'abc'"):
        queue.enqueue("L", recs(1), ["abc"])  # type: ignore[list-item]
    assert queue.stats().records == 0


# -- 4. one key, one link -----------------------------------------------------------------------


class _Owner:
    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def test_a_queue_key_belongs_to_one_owner(queue: RecordQueue) -> None:
    first, second = _Owner("link one"), _Owner("link two")
    queue.claim_key("a.b", first)
    queue.claim_key("a.b", first)  # the same owner again
    with pytest.raises(QueueKeyError, match=r"'a\.b' is already used by link one"):
        queue.claim_key("a.b", second)
    queue.release_key("a.b", first)
    queue.claim_key("a.b", second)
    del second  # a claim lasts only while its owner lives
    queue.claim_key("a.b", first)


# -- 5. the same order under retries on both backends ------------------------------------------


def test_a_failed_batch_retries_together_in_order(queue: RecordQueue, clock: FakeClock) -> None:
    """With jitter, the records of a failed batch still share one retry time, so they come
    back together and in order; later records that are due overtake them meanwhile."""
    policy = RetryPolicy(max_attempts=None, initial_delay=10, jitter=0.5, seed=7)
    ids = queue.enqueue("L", recs(*range(6)), [["a"]] * 6)
    for attempt in range(4):
        batch = queue.due("L", "a", 3)
        assert [r.payload for r in batch] == [0, 1, 2]
        queue.fail("L", "a", [r.id for r in batch], "x", policy.next_delay)
        if attempt == 0:
            assert [r.payload for r in queue.due("L", "a", 10)] == [3, 4, 5]  # overtake
            queue.ack("L", "a", ids[3:])
        clock.advance(0.5)
        while not queue.due("L", "a", 1):
            clock.advance(0.5)


def test_memory_queue_is_the_reference_for_the_order(clock: FakeClock) -> None:
    """The bug: MemoryQueue drew one retry time per record, so a batch came back shuffled."""
    queue = MemoryQueue(clock=clock)
    delays = iter([5.0, 1.0, 3.0])
    ids = queue.enqueue("L", recs(0, 1, 2), [["a"]] * 3)
    queue.fail("L", "a", ids, "x", lambda n: next(delays))
    clock.advance(3)
    assert queue.due("L", "a", 10) == []  # was [1, 2]: retried before record 0
    clock.advance(2)
    assert [r.payload for r in queue.due("L", "a", 10)] == [0, 1, 2]


def test_two_links_with_one_key_on_one_queue_are_refused(queue: RecordQueue) -> None:
    """Same tags, or 'a.b' and ['a', 'b']: the second link would get the first's records."""
    from queue_fakes import CountingInlet, ListOutlet

    from databay_bus import Link

    first = Link(CountingInlet(1), ListOutlet("out"), 1, tags="a.b", queue=queue)
    for tags in ("a.b", ["a", "b"]):
        with pytest.raises(QueueKeyError, match=r"'a\.b' is already used by"):
            Link(CountingInlet(1), ListOutlet("out"), 1, tags=tags, queue=queue)
    Link(CountingInlet(1), ListOutlet("out"), 1, tags=["a", "b"], key="other", queue=queue)
    del first  # a link that is gone holds its key no more
    Link(CountingInlet(1), ListOutlet("out"), 1, tags=["a", "b"], queue=queue)


def test_two_links_with_one_key_in_a_pipeline_file(tmp_path: Path) -> None:
    from databay_bus.config.loader import loads
    from databay_bus.errors import ConfigError

    link = """
[[links]]
tags = {tags}
interval = 60
inlets = ["queue_fakes.CountingInlet"]
outlets = [{{type = "queue_fakes.ListOutlet", name = "out"}}]
"""
    text = f'[queue]\npath = "{tmp_path / "q.db"}"\n'
    text += link.format(tags='"a.b"') + link.format(tags='["a", "b"]')
    with pytest.raises(ConfigError, match=r"links\[1\].*QueueKeyError.*'a\.b' is already used"):
        loads(text)
    assert SqliteQueue(tmp_path / "q.db").close() is None  # the loader closed the queue


def test_a_read_only_queue_cannot_serve_a_link(
    make_sqlite: Callable[..., SqliteQueue], tmp_path: Path
) -> None:
    from queue_fakes import CountingInlet, ListOutlet

    from databay_bus import Link

    make_sqlite("q.db")
    reader = SqliteQueue(tmp_path / "q.db", read_only=True)
    with reader, pytest.raises(ConfigurationError, match="read-only"):
        Link(CountingInlet(1), ListOutlet("out"), 1, tags="t", queue=reader)
