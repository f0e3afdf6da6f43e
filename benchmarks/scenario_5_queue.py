"""Scenario 5: the durable queue, end to end, against the disk's own limits.

databay_bus: one link with ``queue=SqliteQueue(path)``, one inlet returning B records
(B = 1, 100, 1 000), one outlet; ``link.transfer()`` in a loop, each transfer enqueueing the
records (committed and fsynced), pushing them and acking them (committed; fsynced with the
next enqueue, SqliteQueue's default ``ack_sync="normal"``). Figures: records/s and
transfers/s. Databay has no queue, so its column holds the anchors, measured in the same run
on the same disk (the temp directory):

* persist-queue's ``SQLiteAckQueue`` (its defaults: WAL, a commit per call), ``put`` rate and
  ``get`` + ``ack`` rate, one record per call (runs in the Databay venv, where it is installed);
* raw ``os.fsync`` per second (write 64 bytes, fsync, repeat);
* raw SQLite inserts/s in WAL mode with ``synchronous=FULL``, one insert per transaction,
  and rows/s with 1,000 rows of the same 100-byte blob per transaction (issue 19's anchor for
  B = 1 000: the queue should reach >= 0.5x it).

Targets: B = 1 000: >= 50 000 records/s and >= 40x persist-queue's get + ack rate;
B = 1: transfers/s >= 0.3x the raw fsync rate. The queue uses its default codec (OrjsonCodec
when orjson is installed, else JsonCodec: the rows' labels say which one this run got), and
those rows hold the targets. B = 1 000 is also measured with each codec named explicitly,
``JsonCodec`` (the standard library) and ``OrjsonCodec``, side by side in the same run (no
target).

Many small links (issue 19): 20 queued links at B = 1 on one SqliteQueue file, one thread
each looping ``transfer()``; figure: committed transfers/s of all of them together, against
the raw fsync rate of the same run. Target >= 1.0x: enqueues that arrive while another
commits share the next commit (group commit), so the fsync rate bounds commits, not links.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BUS,
    DATABAY,
    GE,
    TIMES,
    Row,
    Unavailable,
    fmt_count,
    fmt_ratio,
    make_link,
    node_classes,
    status,
    timed_loop,
    verdict,
)
from benchmarks.scenario_2_batches import payloads

__all__ = ["ID", "TITLE", "cases", "measure", "summarize"]

ID = 5
TITLE = "durable queue end to end, with disk anchors"
FRESH_PROCESS = False
RECORDS_TARGET = 50_000.0
PQ_RATIO_TARGET = 40.0
FSYNC_RATIO_TARGET = 0.3
MANY_LINKS = 20
RAW_ROWS_TARGET = 0.5  # B = 1 000 records/s vs raw SQLite 1,000-row commits (issue 19)
MANY_LINKS_TARGET = 1.0  # x the raw fsync rate, all links together
_SIZES = {"full": (1, 100, 1_000), "quick": (1, 100, 1_000), "smoke": (1, 100)}
_MIN_TIME = {"full": 1.0, "quick": 0.3, "smoke": 0.05}
_REPEATS = {"full": 5, "quick": 2, "smoke": 1}
# The codecs B = 1 000 is also measured with, by name: case id suffix -> class name.
_CODECS = {"json": "JsonCodec", "orjson": "OrjsonCodec"}


def cases(mode: str) -> list[dict[str, Any]]:
    """databay_bus at each B, then the anchors."""
    repeats = _REPEATS[mode]
    found: list[dict[str, Any]] = [
        {"id": f"queue B={size}", "kind": "queue", "size": size, "libs": [BUS], "repeats": repeats}
        for size in _SIZES[mode]
    ]
    if 1_000 in _SIZES[mode]:
        found += [
            {
                "id": f"queue B=1000 {codec}",
                "kind": "queue",
                "size": 1_000,
                "codec": codec,
                "libs": [BUS],
                "repeats": repeats,
            }
            for codec in _CODECS
        ]
    found += [
        {"id": f"{MANY_LINKS} links B=1", "kind": "links", "libs": [BUS], "repeats": repeats},
        {"id": "persist-queue", "kind": "persistqueue", "libs": [DATABAY], "repeats": repeats},
        {"id": "fsync", "kind": "fsync", "libs": [BUS], "repeats": repeats},
        {"id": "sqlite", "kind": "sqlite", "libs": [BUS], "repeats": repeats},
        {"id": "sqlite 1000", "kind": "sqlite1000", "libs": [BUS], "repeats": repeats},
    ]
    return found


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="databay-bench-q-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Dispatch on the case kind."""
    min_time = _MIN_TIME[mode]
    with _scratch() as folder:
        kind = case["kind"]
        if kind == "queue":
            return _queue(lib, case["size"], folder, min_time, case.get("codec"))
        if kind == "links":
            return _many_links(lib, folder, max(min_time, 0.5))
        if kind == "persistqueue":
            return _persist_queue(folder, min_time)
        if kind == "sqlite1000":
            return _sqlite(folder, min_time, rows=1_000)
        if kind == "fsync":
            return _fsync(folder, min_time)
        return _sqlite(folder, min_time)


def _queue(
    lib: str, size: int, folder: Path, min_time: float, codec: str | None = None
) -> dict[str, Any]:
    try:
        from databay_bus.queue import SqliteQueue
    except ImportError as exc:
        raise Unavailable(f"databay_bus.queue.SqliteQueue: {exc}") from exc
    options: dict[str, Any] = {}
    if codec is not None:
        name = _CODECS[codec]
        try:
            options["codec"] = getattr(importlib.import_module("databay_bus.records"), name)()
        except (ImportError, AttributeError) as exc:  # an older databay_bus, or orjson missing
            raise Unavailable(f"{name}: {exc}") from exc
    nodes = node_classes(lib)
    queue = SqliteQueue(folder / "queue.sqlite3", **options)
    picked = {"codec": type(queue.codec).__name__, "orjson": _orjson_installed()}
    outlet = nodes["CountOutlet"]()
    try:
        link = make_link(
            lib, [nodes["ListInlet"](payloads(size))], [outlet], 60.0, queue=queue, tags="bench"
        )
    except ImportError as exc:
        queue.close()
        raise Unavailable(f"Link(queue=...): {exc}") from exc
    link.on_start()
    try:
        count, seconds = timed_loop(link.transfer, min_time, min_count=3, warmup=2)
        pending = queue.stats().pending()
    finally:
        link.on_shutdown()
        queue.close()
    if outlet.count != (count + 2) * size or pending:
        raise AssertionError(f"pushed {outlet.count}, {pending} still pending")
    return {"records_per_s": count * size / seconds, "transfers_per_s": count / seconds, **picked}


def _orjson_installed() -> bool:
    return importlib.util.find_spec("orjson") is not None


def _many_links(lib: str, folder: Path, seconds: float) -> dict[str, Any]:
    """MANY_LINKS queued links at B = 1 on one file, a thread each looping transfer()."""
    import threading

    from databay_bus.queue import SqliteQueue

    nodes = node_classes(lib)
    queue = SqliteQueue(folder / "links.sqlite3")
    outlets = [nodes["CountOutlet"]() for _ in range(MANY_LINKS)]
    links = [
        make_link(lib, [nodes["ListInlet"](payloads(1))], [outlet], 60.0, queue=queue, tags=f"l{i}")
        for i, outlet in enumerate(outlets)
    ]
    counts = [0] * MANY_LINKS
    start, stop = threading.Barrier(MANY_LINKS + 1), threading.Event()

    def loop(index: int) -> None:
        link = links[index]
        link.transfer()  # warm up: connection, statements
        start.wait()
        while not stop.is_set():
            link.transfer()
            counts[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(MANY_LINKS)]
    try:
        for link in links:
            link.on_start()
        for thread in threads:
            thread.start()
        start.wait()
        begun = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - begun
        pending = queue.stats().pending()
    finally:
        stop.set()
        for link in links:
            link.on_shutdown()
        queue.close()
    pushed = sum(outlet.count for outlet in outlets)
    if pushed != sum(counts) + MANY_LINKS or pending:
        raise AssertionError(f"pushed {pushed} of {sum(counts) + MANY_LINKS}, {pending} pending")
    return {"transfers_per_s": sum(counts) / elapsed}


def _persist_queue(folder: Path, min_time: float) -> dict[str, Any]:
    try:
        from persistqueue import SQLiteAckQueue
    except ImportError as exc:
        raise Unavailable(f"persist-queue is not installed here: {exc}") from exc
    queue = SQLiteAckQueue(str(folder / "pq"))
    item = payloads(1)[0]
    puts, put_seconds = timed_loop(lambda: queue.put(item), min_time, min_count=20, warmup=0)

    started = time.perf_counter()
    for _ in range(puts):  # exactly what was put: the queue never runs dry mid-measurement
        queue.ack(queue.get(block=False))
    get_seconds = time.perf_counter() - started
    return {"put_per_s": puts / put_seconds, "get_ack_per_s": puts / get_seconds}


def _fsync(folder: Path, min_time: float) -> dict[str, Any]:
    fd = os.open(folder / "fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:

        def write_sync() -> None:
            os.write(fd, b"x" * 64)
            os.fsync(fd)

        count, seconds = timed_loop(write_sync, min_time, min_count=20)
    finally:
        os.close(fd)
    return {"fsync_per_s": count / seconds}


def _sqlite(folder: Path, min_time: float, rows: int = 1) -> dict[str, Any]:
    conn = sqlite3.connect(folder / "raw.sqlite3", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        blob = b"x" * 100

        batch = [(blob,)] * rows

        def insert() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO t (data) VALUES (?)", batch)
            conn.execute("COMMIT")

        count, seconds = timed_loop(insert, min_time, min_count=20 if rows == 1 else 3)
    finally:
        conn.close()
    return {"inserts_per_s": count * rows / seconds}


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """Anchors first, then databay_bus at each B with its targets."""

    def figure(case: str, lib: str, key: str) -> float | None:
        value = results.get(case, {}).get(lib, {}).get(key)
        return float(value) if value else None

    def cell(case: str, lib: str, key: str, unit: str) -> str:
        value = figure(case, lib, key)
        return fmt_count(value, unit) if value else status(results.get(case, {}).get(lib))

    pq_get = figure("persist-queue", DATABAY, "get_ack_per_s")
    fsync = figure("fsync", BUS, "fsync_per_s")
    rows = [
        Row(
            ID,
            "anchor: persist-queue SQLiteAckQueue put",
            cell("persist-queue", DATABAY, "put_per_s", "rec/s"),
        ),
        Row(
            ID,
            "anchor: persist-queue SQLiteAckQueue get + ack",
            cell("persist-queue", DATABAY, "get_ack_per_s", "rec/s"),
        ),
        Row(ID, "anchor: raw os.fsync", cell("fsync", BUS, "fsync_per_s", "fsync/s")),
        Row(
            ID,
            "anchor: raw SQLite WAL insert, synchronous=FULL, commit each",
            cell("sqlite", BUS, "inserts_per_s", "inserts/s"),
        ),
        Row(
            ID,
            "anchor: raw SQLite WAL insert, synchronous=FULL, 1,000 rows per commit",
            cell("sqlite 1000", BUS, "inserts_per_s", "rows/s"),
        ),
    ]
    raw_rows = figure("sqlite 1000", BUS, "inserts_per_s")
    many = figure(f"{MANY_LINKS} links B=1", BUS, "transfers_per_s")
    rows.append(
        Row(
            ID,
            f"{MANY_LINKS} queued links at B=1 on one file: transfers/s, all together",
            "—",
            cell(f"{MANY_LINKS} links B=1", BUS, "transfers_per_s", "transfers/s"),
            fmt_ratio(many / fsync, "raw fsync rate") if many and fsync else "—",
            f"{GE} {MANY_LINKS_TARGET:g}{TIMES} raw fsync/s",
            verdict(None if not (many and fsync) else many / fsync >= MANY_LINKS_TARGET),
        )
    )
    for size in _SIZES[mode]:
        case = f"queue B={size}"
        records = figure(case, BUS, "records_per_s")
        transfers = figure(case, BUS, "transfers_per_s")
        label = f"SqliteQueue end to end, B={size:,}{_default_note(results.get(case, {}))}"
        rows.append(
            Row(
                ID,
                label + ": records/s",
                "Databay: no queue",
                cell(case, BUS, "records_per_s", "rec/s"),
                fmt_ratio(records / pq_get, "persist-queue get + ack")
                if records and pq_get
                else "—",
            )
        )
        rows.append(
            Row(
                ID,
                label + ": transfers/s",
                "—",
                cell(case, BUS, "transfers_per_s", "transfers/s"),
                fmt_ratio(transfers / fsync, "raw fsync rate") if transfers and fsync else "—",
            )
        )
        if size == 1_000:
            met = None if records is None else records >= RECORDS_TARGET
            rows[-2].target = f"{GE} 50,000 rec/s"
            rows[-2].verdict = verdict(met)
            rows.append(
                Row(
                    ID,
                    label + ": vs persist-queue get + ack",
                    "—",
                    "—",
                    rows[-2].ratio,
                    f"{GE} {PQ_RATIO_TARGET:g}{TIMES} persist-queue",
                    verdict(
                        None if not (records and pq_get) else records / pq_get >= PQ_RATIO_TARGET
                    ),
                )
            )
            rows.append(
                Row(
                    ID,
                    label + ": vs raw SQLite 1,000-row commits",
                    "—",
                    "—",
                    fmt_ratio(records / raw_rows, "raw SQLite rows/s")
                    if records and raw_rows
                    else "—",
                    f"{GE} {RAW_ROWS_TARGET:g}{TIMES} raw SQLite rows/s",
                    verdict(
                        None
                        if not (records and raw_rows)
                        else records / raw_rows >= RAW_ROWS_TARGET
                    ),
                )
            )
            for codec, name in _CODECS.items():
                named = f"queue B=1000 {codec}"
                fast = figure(named, BUS, "records_per_s")
                rows.append(
                    Row(
                        ID,
                        f"SqliteQueue end to end, B={size:,}, {name}"
                        + (" (stdlib)" if codec == "json" else "")
                        + ": records/s",
                        "—",
                        cell(named, BUS, "records_per_s", "rec/s"),
                        fmt_ratio(fast / raw_rows, "raw SQLite rows/s")
                        if fast and raw_rows
                        else "—",
                    )
                )
        if size == 1:
            rows[-1].target = f"{GE} {FSYNC_RATIO_TARGET:g}{TIMES} raw fsync/s"
            rows[-1].verdict = verdict(
                None if not (transfers and fsync) else transfers / fsync >= FSYNC_RATIO_TARGET
            )
    return rows


def _default_note(sides: dict[str, Any]) -> str:
    """`` (default codec: OrjsonCodec, orjson installed)``: which codec the queue picked."""
    side = sides.get(BUS, {})
    if "codec" not in side:
        return ""
    installed = "orjson installed" if side.get("orjson") else "orjson not installed"
    return f" (default codec: {side['codec']}, {installed})"
