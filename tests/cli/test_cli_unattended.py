"""``databay-bus run`` left unattended, in real subprocesses: a source down then up, a hung
outlet under a bounded shutdown (its records delivered by the next run), a second signal,
JSON logs, and --fail-fast for batch jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TIMEOUT = 90

PIPELINE = """
[queue]
path = "${WORK}/queue.sqlite3"

[[links]]
tags = ["feed"]
interval = "100ms"
inlets = [{ type = "unattended_nodes.FlagSource", down_flag = "${WORK}/down", attempts = "${WORK}/attempts" }]
outlets = [{ type = "unattended_nodes.HangingOutlet", path = "${WORK}/out.jsonl", hang_flag = "${WORK}/hang", name = "out" }]
"""  # noqa: E501 - TOML inline tables stay on one line


class Run:
    """A ``databay-bus run`` subprocess whose stderr is collected line by line meanwhile."""

    def __init__(self, work: Path, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
        env["WORK"] = str(work)
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "databay_bus", "run", str(work / "pipeline.toml"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.err: list[str] = []
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.err.append(line)

    def stderr_has(self, text: str) -> bool:
        return any(text in line for line in list(self.err))

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Wait for the exit (killing the process after ``timeout``); code, stdout, stderr."""
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(10)
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.stdout.close()
        if self.process.stderr is not None:
            self.process.stderr.close()
        return self.process.returncode, out, "".join(self.err)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def delivered(work: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(work / "out.jsonl")]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.toml").write_text(PIPELINE, encoding="utf-8")
    return tmp_path


def test_source_down_then_up_keeps_running_and_delivers(work: Path) -> None:
    (work / "down").touch()
    run = Run(work)
    try:
        wait_for(lambda: len(lines(work / "attempts")) >= 5, "five failed pulls")
        assert run.process.poll() is None, "the pipeline stopped when its source was down"
        (work / "down").unlink()
        wait_for(lambda: len(delivered(work)) >= 3, "records once the source is back")
        wait_for(lambda: run.stderr_has("back after"), "the recovery line")
        run.process.send_signal(signal.SIGTERM)
    finally:
        code, out, err = run.finish()
    assert code == 0, err
    assert "stopped (signal received)" in out
    assert err.count("Traceback") == 1  # one failure streak: one traceback
    assert "ConnectionError raised when executing" in err
    assert "feed: transfer back after" in err
    assert [d["payload"] for d in delivered(work)][:3] == [1, 2, 3]


def test_hung_outlet_bounded_shutdown_then_delivered_on_restart(work: Path) -> None:
    (work / "hang").touch()
    first = Run(work, "--duration", "1", "--shutdown-timeout", "0.5")
    code, out, err = first.finish()
    assert code == 0, err
    assert (work / "out.jsonl.hung").exists()
    assert "shutdown timed out after 0.5 s; still transferring: feed" in err
    assert "stopped (--duration reached)" in out
    assert delivered(work) == []
    assert "pending=1" in out  # the record the hung push held is still queued
    (work / "hang").unlink()
    second = Run(work, "--transfers", "1")
    code, out, err = second.finish()
    assert code == 0, err
    ids = [d["id"] for d in delivered(work)]
    assert len(ids) == len(set(ids)) >= 2  # the held record, then the new run's own
    assert "pending=0 dead=0" in out


def test_second_signal_exits_at_once(work: Path) -> None:
    (work / "hang").touch()
    run = Run(work, "--shutdown-timeout", "600")
    try:
        wait_for(lambda: (work / "out.jsonl.hung").exists(), "the outlet to hang")
        run.process.send_signal(signal.SIGTERM)
        wait_for(lambda: run.stderr_has("shutting down gracefully"), "the first signal handled")
        assert run.process.poll() is None  # waiting for the hung transfer
        run.process.send_signal(signal.SIGTERM)
    finally:
        code, _out, err = run.finish()
    assert code == 128 + signal.SIGTERM, err
    assert "SIGTERM received again: exiting at once" in err


def test_json_logs_and_fail_fast(work: Path) -> None:
    (work / "down").touch()
    run = Run(work, "--fail-fast", "--log-format", "json", "--duration", "60")
    code, _out, err = run.finish()
    assert code == 1  # a batch job stops at the first failed transfer
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failed = [r for r in records if r["level"] == "ERROR" and "ConnectionError" in r["message"]]
    assert failed and "Traceback" in failed[0]["exc"]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r.get("link") == "feed" for r in records)


CHECKED = """
[queue]
path = "${WORK}/not-a-queue.sqlite3"

[[links]]
tags = ["files"]
interval = 60
inlets = [{ type = "file", filepath = "${WORK}/missing.log" }]
outlets = [
    { type = "csv", name = "here", default_filepath = "${WORK}/out.csv" },
    { type = "csv", name = "nowhere", default_filepath = "${WORK}/no/such/dir/out.csv" },
]

[[links]]
tags = ["web"]
interval = 60
inlets = [{ type = "http", url = "http://localhost:9/data" }]
outlets = [{ type = "null" }]
"""


def test_validate_check_tries_what_it_can_without_side_effects(work: Path) -> None:
    (work / "checked.toml").write_text(CHECKED, encoding="utf-8")
    (work / "not-a-queue.sqlite3").write_text("this is not a database", encoding="utf-8")
    env = dict(os.environ, WORK=str(work), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "databay_bus", "validate", str(work / "checked.toml"), "--check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "FAIL  links[0].inlets[0].filepath: " in out and "missing.log does not exist" in out
    assert "ok    links[0].outlets[0].default_filepath: " in out
    assert "FAIL  links[0].outlets[1].default_filepath: " in out and "does not exist" in out
    assert "ok    links[1].inlets[0].url: host 'localhost' resolves" in out
    assert "FAIL  queue.path: " in out and "does not open as an SQLite queue" in out
    assert "2 ok, 3 failed" in out
    assert "3 check(s) failed" in done.stderr
    assert sorted(p.name for p in work.iterdir()) == [
        "checked.toml",
        "not-a-queue.sqlite3",
        "pipeline.toml",
    ]  # nothing was created
