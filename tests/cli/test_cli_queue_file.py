"""The queue commands beside a running writer, `status`, and one line + exit 1 on every
storage failure (issues 14 and 15): real subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from databay_bus import Record
from databay_bus.queue import SqliteQueue
from databay_bus.records.codecs import PickleCodec
from databay_bus.status import LinkStatus, OutletStatus, PipelineStatus

REPO = Path(__file__).resolve().parents[2]
NODES_DIR = REPO / "tests" / "config"


# Runs the command as another user: imports first (root's Python is not readable by
# nobody), then drops privileges, then runs main().
_AS_USER = """
import os, sys
import databay_bus._demo, databay_bus.config, databay_bus.queue.sqlite, aiohttp
from databay_bus.cli import build_parser, main
build_parser()  # imports every command module
user = int(sys.argv.pop(1))
os.setgid(user)
os.setuid(user)
sys.exit(main(sys.argv[1:]))
"""


def cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(NODES_DIR)]))
    command = ["-m", "databay_bus"] if user is None else ["-c", _AS_USER, str(user)]
    return subprocess.run(
        [sys.executable, *command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
        cwd="/",
    )


def one_line_failure(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def recs(*payloads: object) -> list[Record]:
    return [Record(p, {"__inlet__": "I"}) for p in payloads]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_inspection_beside_a_running_writer(tmp_path: Path) -> None:
    """stats, dead, export and status read the file while its writer holds it (issue 15)."""
    path = tmp_path / "q.sqlite3"
    with SqliteQueue(path) as writer:
        ids = writer.enqueue("prices", recs(1, 2, 3), [["csv", "mongo"]] * 3)
        writer.ack("prices", "csv", ids)
        writer.fail("prices", "mongo", ids[:1], "down", lambda n: None)
        writer.fail("prices", "mongo", ids[1:], "down", lambda n: 3600.0)
        now = time.time()
        status = PipelineStatus(
            process="pid 1 on host",
            planner="ApsPlanner",
            state="running",
            updated_at=now,
            links=(
                LinkStatus(
                    "prices",
                    ("prices",),
                    "failing",
                    60.0,
                    transfers=7,
                    last_transfer_at=now - 2,
                    next_transfer_at=now + 58,
                    failing=("mongo",),
                    outlets=(OutletStatus("csv", 3), OutletStatus("mongo", 0, 2)),
                ),
            ),
        )
        writer.record_status("me", status.to_json())

        stats = cli("queue", "stats", "--queue", str(path), "--json")
        assert stats.returncode == 0, stats.stderr
        rows = {r["outlet"]: r for r in json.loads(stats.stdout)["outlets"]}
        assert (rows["mongo"]["pending"], rows["mongo"]["dead"], rows["csv"]["delivered"]) == (
            2,
            1,
            3,
        )
        dead = cli("queue", "dead", "--queue", str(path), "--json")
        assert [json.loads(x)["id"] for x in dead.stdout.splitlines()] == ids[:1]
        export = cli("queue", "export", "--queue", str(path))
        assert export.returncode == 0, export.stderr
        exported = [json.loads(x) for x in export.stdout.splitlines()]
        assert [(r["id"], r["state"], r["payload"]) for r in exported] == [
            (ids[1], "retrying", 2),
            (ids[2], "retrying", 3),
        ]
        shown = cli("status", "--queue", str(path))
        assert shown.returncode == 0, shown.stderr
        header, _, line = shown.stdout.splitlines()
        assert "pid 1 on host" in header and "ApsPlanner running" in header
        assert line.split()[:2] == ["prices", "failing"] and line.endswith("mongo")
        as_json = json.loads(cli("status", "--queue", str(path), "--json").stdout)
        (pipeline,) = as_json["pipelines"]
        assert pipeline["running"] is True
        assert pipeline["links"][0]["pending"] == 2 and pipeline["links"][0]["dead"] == 1
        after = writer.stats()  # nothing was handed out or changed
        assert (after.pending("prices", "mongo"), after.dead("prices", "mongo")) == (2, 1)


def test_status_of_a_stopped_pipeline_says_so(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    with SqliteQueue(path) as writer:
        old = PipelineStatus("pid 1 on host", "ApsPlanner", "running", time.time() - 3600)
        writer.record_status("me", old.to_json())
    shown = cli("status", "--queue", str(path))
    assert shown.returncode == 0 and "NOT RUNNING" in shown.stdout.splitlines()[0]


def test_export_of_a_pickle_queue_names_the_codec_and_changes_nothing(tmp_path: Path) -> None:
    """The old export listed through due(): every record dead-lettered, exit 0."""
    path = tmp_path / "q.sqlite3"
    with SqliteQueue(path, codec=PickleCodec()) as writer:
        writer.enqueue("L", recs({1}, {2}), [["a"]] * 2)
    before = digest(path)
    refused = cli("queue", "export", "--queue", str(path))
    one_line_failure(refused, "2 record(s) cannot be decoded", "'pickle'", "--codec")
    assert refused.stdout == ""
    decoded = cli("queue", "export", "--queue", str(path), "--codec", "pickle")
    assert decoded.returncode == 0, decoded.stderr
    assert [json.loads(x)["payload"] for x in decoded.stdout.splitlines()] == ["{1}", "{2}"]
    assert digest(path) == before
    with SqliteQueue(path, codec=PickleCodec()) as again:
        assert again.stats().pending("L", "a") == 2 and again.stats().dead() == 0


def test_export_to_a_path_it_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    SqliteQueue(path).close()
    one_line_failure(
        cli("queue", "export", "--queue", str(path), "-o", str(tmp_path / "no" / "x.jsonl")),
        "cannot write",
    )
    one_line_failure(
        cli("queue", "export", "--queue", str(path), "-o", str(tmp_path)), "cannot write"
    )


def test_a_damaged_queue_fails_in_one_line(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "q.sqlite3"
    with SqliteQueue(path) as writer:
        writer.enqueue("L", recs(*range(50)), [["a"]] * 50)
    conn = sqlite3.connect(path)
    try:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='waiting'").fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    finally:
        conn.close()
    with open(path, "r+b") as file:  # the page header and cell offsets of a table
        file.seek(page_size * (root - 1) + 1)
        file.write(b"\xff" * 64)
    for action in ("stats", "check"):  # read-only; replay opens to write: same check
        one_line_failure(cli("queue", action, "--queue", str(path)), "damaged")


def test_a_directory_is_no_queue_file(tmp_path: Path) -> None:
    one_line_failure(cli("queue", "stats", "--queue", str(tmp_path)), "is a directory")


def test_check_reports_ok(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    SqliteQueue(path).close()
    done = cli("queue", "check", "--queue", str(path))
    assert done.returncode == 0 and done.stdout.strip().endswith(": ok")


def test_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`queue export | head`: no BrokenPipeError traceback, exit 141 like a Unix tool."""
    path = tmp_path / "q.sqlite3"
    with SqliteQueue(path) as writer:
        writer.enqueue("L", recs(*(["x" * 200] * 2000)), [["a"]] * 2000)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "databay_bus", "queue", "export", "--queue", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(100)
    process.stdout.close()
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(60) == 141
    assert err == b""


PIPELINE = """
[queue]
path = "{path}"

[[links]]
tags = ["e2e"]
interval = 60
inlets = ["pipeline_nodes.CountingInlet"]
outlets = [{{ type = "pipeline_nodes.JsonLinesOutlet", path = "{out}", name = "good" }}]
"""


def test_run_on_a_queue_held_by_another_process_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(PIPELINE.format(path=path, out=tmp_path / "out.jsonl"), encoding="utf-8")
    with SqliteQueue(path):
        done = cli("run", str(pipeline), "--transfers", "1")
    one_line_failure(done, "in use by", str(os.getpid()))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's owner-only tmp tree, so another user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="databay_bus-qfile-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path)


NOBODY = 65534 if os.geteuid() == 0 else None


def test_unreadable_and_unwritable_places_fail_in_one_line(shared_dir: Path) -> None:
    """A queue in a directory it cannot read; a demo --dir it cannot write (as a user who
    lacks the rights: root has them all, so root runs these as nobody)."""
    hidden = shared_dir / "hidden"
    hidden.mkdir()
    SqliteQueue(hidden / "q.sqlite3").close()
    closed = shared_dir / "closed"
    closed.mkdir()
    if NOBODY is None:
        hidden.chmod(0o000)
        closed.chmod(0o500)
    else:
        hidden.chmod(0o700)  # root's, and nobody is not root
        closed.chmod(0o755)
    try:
        one_line_failure(
            cli("queue", "stats", "--queue", str(hidden / "q.sqlite3"), user=NOBODY),
            "cannot open the queue",
        )
        one_line_failure(
            cli(
                "demo",
                "--dir",
                str(closed / "demo"),
                "--transfers",
                "1",
                user=NOBODY,
            ),
            "ermission denied",
        )
    finally:
        hidden.chmod(0o700)
        closed.chmod(0o700)


def test_status_from_a_running_process_status_endpoint() -> None:
    """The second source: the web interface's /api/overview JSON (extra keys ignored)."""
    import http.server
    import threading

    now = time.time()
    overview = {
        "alias": "prod",
        "process": "pid 7 on web-1",
        "planner": "ApsPlanner",
        "state": "running",
        "paused": False,
        "links": [
            {
                "id": "prices",
                "tags": ["prices"],
                "state": "ok",
                "schedule": "every 60s",
                "interval": 60.0,
                "queued": True,
                "transfers": 4,
                "failures": 0,
                "last_transfer_at": now - 5,
                "next_transfer_at": now + 55,
                "pending": 0,
                "dead": 0,
                "outlets": [{"name": "csv", "pushed": 8, "failures": 0, "pending": 0}],
            }
        ],
    }
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps(overview).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/overview"
        shown = cli("status", "--url", url, "--token", "s3cret")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert shown.returncode == 0, shown.stderr
    assert seen == ["Bearer s3cret"]
    header, _, line = shown.stdout.splitlines()
    assert "pid 7 on web-1" in header and "ApsPlanner running" in header
    assert line.split()[:2] == ["prices", "ok"]


@pytest.mark.parametrize("url", ["notaurl", "ftp//x", "http://"])
def test_status_of_a_malformed_url_is_one_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from databay_bus.cli import main

    assert main(["status", "--url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"databay-bus status: {url}: "), err


FULL_PIPELINE = """
[planner]
type = "aps"

[queue]
path = "{path}"

[[links]]
tags = ["big"]
interval = "50ms"
inlets = [{{ type = "pipeline_nodes.CountingInlet", per_pull = 400 }}]
outlets = ["null"]
"""


def test_run_past_a_file_size_limit_stops_with_a_named_error(tmp_path: Path) -> None:
    """A file size limit set inside the process (ulimit -f): the queue's write fails with
    QueueFullError naming the file (Python ignores SIGXFSZ, so the write gets EFBIG), the
    --fail-fast pipeline stops, exit 1, and the records stored before are intact."""
    import resource

    path = tmp_path / "q.sqlite3"
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(FULL_PIPELINE.format(path=path), encoding="utf-8")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(NODES_DIR)]))
    done = subprocess.run(
        [sys.executable, "-m", "databay_bus", "run", str(pipeline), "--fail-fast", "--duration=60"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
        preexec_fn=limit,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "QueueFullError" in done.stderr and "file size limit reached" in done.stderr
    assert str(path) in done.stderr or "q.sqlite3" in done.stderr
    with SqliteQueue(path) as queue:
        assert queue.integrity_check() == "ok"
        assert queue.stats().records % 400 == 0  # whole transfers only
