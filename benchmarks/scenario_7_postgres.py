"""Scenario 7: PostgresQueue end to end with 1, 2 and 4 worker processes, procrastinate beside.

databay_bus: P processes (P = 1, 2, 4) each run ``link.transfer()`` in a loop on one link set
(the same link key, one ``PostgresQueue`` schema): every transfer pulls B records (B = 1, 100,
1 000), enqueues them (one committed transaction), claims due records with ``FOR UPDATE SKIP
LOCKED`` and a lease (at most B), pushes them and acks them (committed). The figure is
records pushed and acked per second across the processes, durable as the server's
``synchronous_commit`` says (reported in the row). The processes start together and run for
the same wall-clock window.

Anchor: procrastinate (a PostgreSQL task queue; one job per record, ``batch_defer`` then a
worker draining them, on the same server), installed in its own venv
``benchmarks/.venv-procrastinate`` (made on first use; unavailable if it cannot be installed).

Needs a PostgreSQL server: ``DATABAY_BUS_POSTGRES_DSN``, else
postgresql://postgres@127.0.0.1:5432/test. Targets: B = 1 000 with 2 processes >= 20 000
records/s and >= 10x procrastinate; this machine has 2 cores shared with the server, so the
scaling from 1 to 2 processes is reported, not promised.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import BUS, GE, TIMES, Row, Unavailable, fmt_count, fmt_ratio, status
from benchmarks._common import verdict as verdict_of

__all__ = ["ID", "TITLE", "cases", "measure", "summarize"]

ID = 7
TITLE = "PostgresQueue end to end, 1/2/4 processes, procrastinate as the anchor"
FRESH_PROCESS = False
RECORDS_TARGET = 20_000.0
PROCRASTINATE_RATIO_TARGET = 10.0
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parent.parent
VENV = Path(__file__).resolve().parent / ".venv-procrastinate"
PROCRASTINATE = "procrastinate==3.10.0"
_SIZES = {"full": (1, 100, 1_000), "quick": (1, 100, 1_000), "smoke": (100,)}
_PROCESSES = {"full": (1, 2, 4), "quick": (1, 2, 4), "smoke": (1, 2)}
_SECONDS = {"full": 3.0, "quick": 1.5, "smoke": 0.3}
_JOBS = {"full": 5_000, "quick": 2_000, "smoke": 200}
_REPEATS = {"full": 3, "quick": 1, "smoke": 1}


def _dsn() -> str:
    return os.environ.get("DATABAY_BUS_POSTGRES_DSN", DEFAULT_DSN)


def cases(mode: str) -> list[dict[str, Any]]:
    """databay_bus at each (B, P), then procrastinate."""
    repeats = _REPEATS[mode]
    found = [
        {
            "id": f"pg B={size} P={procs}",
            "kind": "pg",
            "size": size,
            "procs": procs,
            "libs": [BUS],
            "repeats": repeats,
        }
        for size in _SIZES[mode]
        for procs in _PROCESSES[mode]
    ]
    if mode != "smoke":  # the smoke run (the test suite) never builds the procrastinate venv
        found.append(
            {"id": "procrastinate", "kind": "procrastinate", "libs": [BUS], "repeats": repeats}
        )
    return found


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Dispatch on the case kind; each uses a fresh schema, dropped afterwards."""
    try:
        import psycopg
    except ImportError as exc:
        raise Unavailable(f"psycopg is not installed: {exc}") from exc
    dsn = _dsn()
    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            settings = {
                name: str(conn.execute(f"SHOW {name}".encode()).fetchone()[0])  # type: ignore[index]
                for name in ("synchronous_commit", "fsync")
            }
    except psycopg.Error as exc:
        raise Unavailable(
            f"no PostgreSQL at DATABAY_BUS_POSTGRES_DSN or {DEFAULT_DSN}: {exc}"
        ) from None
    schema = f"bench_{secrets.token_hex(4)}"
    try:
        if case["kind"] == "pg":
            result = _bus(dsn, schema, case["size"], case["procs"], _SECONDS[mode])
        else:
            result = _procrastinate(dsn, schema, _JOBS[mode])
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    result.update(settings)
    return result


def _bus(dsn: str, schema: str, size: int, procs: int, seconds: float) -> dict[str, Any]:
    from databay_bus.queue import PostgresQueue

    PostgresQueue(dsn, schema=schema).close()  # the schema exists before the workers start
    start_at = time.time() + 2.0 + 0.3 * procs  # after every child imported and connected
    command = [sys.executable, "-m", "benchmarks.scenario_7_postgres", "child", dsn, schema]
    children = [
        subprocess.Popen(
            [*command, str(size), str(start_at), str(seconds)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for _ in range(procs)
    ]
    reports = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    if any(child.returncode for child in children):
        raise AssertionError(f"a child failed: {reports}")
    pushed = sum(r["pushed"] for r in reports)
    elapsed = max(r["seconds"] for r in reports)
    return {
        "records_per_s": pushed / elapsed,
        "transfers_per_s": sum(r["transfers"] for r in reports) / elapsed,
    }


def _child(dsn: str, schema: str, size: int, start_at: float, seconds: float) -> None:
    """One worker process: transfers in a loop during the common window; prints counts."""
    from benchmarks._common import make_link, node_classes
    from benchmarks.scenario_2_batches import payloads
    from databay_bus.queue import PostgresQueue

    nodes = node_classes(BUS)
    queue = PostgresQueue(dsn, schema=schema, max_connections=2)
    outlet = nodes["CountOutlet"]()
    link = make_link(
        BUS,
        [nodes["ListInlet"](payloads(size))],
        [outlet],
        60.0,
        queue=queue,
        tags="bench",
        batch_size=size,
    )
    link.on_start()
    link.transfer()  # warm: connections, prepared statements
    time.sleep(max(0.0, start_at - time.time()))
    before, transfers = outlet.count, 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        link.transfer()
        transfers += 1
    elapsed = time.perf_counter() - started
    link.on_shutdown()
    queue.close()
    print(json.dumps({"pushed": outlet.count - before, "transfers": transfers, "seconds": elapsed}))


_PROCRASTINATE_SCRIPT = r"""
import json, sys, time
import procrastinate

dsn, schema, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = {"options": f"-c search_path={schema}"}
connector = procrastinate.PsycopgConnector(conninfo=dsn, kwargs=options)
app = procrastinate.App(connector=connector)

@app.task(name="record")
def record(n):
    return None

with app.open():
    app.schema_manager.apply_schema()
    started = time.perf_counter()
    record.batch_defer(*({"n": i} for i in range(jobs)))
    deferred = time.perf_counter()
    app.run_worker(wait=False, concurrency=4, install_signal_handlers=False, listen_notify=False)
    done = time.perf_counter()
print(json.dumps({"defer_s": deferred - started, "work_s": done - deferred, "jobs": jobs}))
"""


def _procrastinate(dsn: str, schema: str, jobs: int) -> dict[str, Any]:
    python = _procrastinate_python()
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    done = subprocess.run(
        [str(python), "-c", _PROCRASTINATE_SCRIPT, dsn, schema, str(jobs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"procrastinate failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    total = report["defer_s"] + report["work_s"]
    return {"jobs_per_s": jobs / total, "work_jobs_per_s": jobs / report["work_s"]}


def _procrastinate_python() -> Path:
    """The venv holding procrastinate (made on first use), or Unavailable."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import procrastinate"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PROCRASTINATE],
            check=True,
            timeout=600,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"cannot install {PROCRASTINATE} into {VENV}: {exc}") from exc
    return python


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """procrastinate first, then databay_bus at each (B, P), with targets at B = 1 000, P = 2."""

    def side(case: str) -> dict[str, Any]:
        return results.get(case, {}).get(BUS) or {}

    anchor = side("procrastinate").get("jobs_per_s")
    rows = [
        Row(
            ID,
            "anchor: procrastinate, one job per record (batch_defer + worker, concurrency 4)",
            "—",
            fmt_count(anchor, "jobs/s")
            if anchor
            else status(results.get("procrastinate", {}).get(BUS)),
        )
    ]
    for size in _SIZES[mode]:
        one = side(f"pg B={size} P=1").get("records_per_s")
        for procs in _PROCESSES[mode]:
            data = side(f"pg B={size} P={procs}")
            value = data.get("records_per_s")
            label = (
                f"PostgresQueue B={size:,}, {procs} process(es) "
                f"(synchronous_commit={data.get('synchronous_commit', '?')}): records/s"
            )
            cell = (
                fmt_count(value, "rec/s")
                if value
                else status(results.get(f"pg B={size} P={procs}", {}).get(BUS))
            )
            ratio = "—"
            if value and one and procs > 1:
                ratio = fmt_ratio(value / one, "1 process")
            elif value and anchor:
                ratio = fmt_ratio(value / anchor, "procrastinate")
            row = Row(ID, label, "—", cell, ratio)
            if size == 1_000 and procs == 2:
                row.target = (
                    f"{GE} 20,000 rec/s and "
                    f"{GE} {PROCRASTINATE_RATIO_TARGET:g}{TIMES} procrastinate"
                )
                met = None
                if value is not None:
                    met = value >= RECORDS_TARGET and (
                        anchor is None or value / anchor >= PROCRASTINATE_RATIO_TARGET
                    )
                row.verdict = verdict_of(met)
                if anchor and value:
                    row.ratio = fmt_ratio(value / anchor, "procrastinate")
            rows.append(row)
    return rows


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "child":
    _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
