"""The databay-bus command end to end, in real subprocesses (argument parsing alone in process)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from processes import reaped

NODES_DIR = Path(__file__).resolve().parents[1] / "config"
TIMEOUT = 90


def cli_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(NODES_DIR), env.get("PYTHONPATH", "")]).strip(
        os.pathsep
    )
    env["WORK"] = str(work)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "databay_bus", *args],
        capture_output=True,
        text=True,
        env=cli_env(work),
        timeout=TIMEOUT,
        check=False,
    )


def start_cli(work: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "databay_bus", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(work),
    )


def lines_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


PIPELINE = """
log_level = "INFO"

[queue]
path = "${WORK}/queue.sqlite3"
retry = { max_attempts = 1 }

[[links]]
tags = ["e2e"]
interval = "100ms"
inlets = [{ type = "pipeline_nodes.CountingInlet", per_pull = 2 }]
outlets = [
    { type = "pipeline_nodes.JsonLinesOutlet", path = "${WORK}/good.jsonl", name = "good" },
    { type = "pipeline_nodes.FlakyFileOutlet", name = "flaky", path = "${WORK}/flaky.jsonl", broken_flag = "${WORK}/broken" },
]
"""  # noqa: E501 - TOML inline tables stay on one line


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.toml").write_text(PIPELINE, encoding="utf-8")
    return tmp_path


def queue_stats(work: Path) -> dict[str, Any]:
    done = cli(work, "queue", "stats", "--queue", str(work / "queue.sqlite3"), "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def outlet_stats(stats: dict[str, Any], outlet: str) -> dict[str, Any]:
    rows = [row for row in stats["outlets"] if row["outlet"] == outlet]
    assert len(rows) <= 1
    return rows[0] if rows else {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}


# -- help and usage ---------------------------------------------------------------------------


def in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    """``main(args)`` in this process: (exit code, stdout, stderr). For argument parsing only,
    where an interpreter start per case would cost seconds and test nothing more."""
    from databay_bus.cli import main

    try:
        code: object = main(args)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["validate"],
        ["schedule"],
        ["demo"],
        ["status"],
        ["queue"],
        *[["queue", action] for action in ("stats", "dead", "replay", "drop", "purge", "export")],
        *[["cursor", action] for action in ("list", "set", "reset")],
        ["hash-password"],
    ],
    ids=lambda c: " ".join(c) or "top",
)
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = in_process([*command, "--help"], capsys)
    assert code == 0, err
    assert out.startswith("usage: databay-bus")


@pytest.mark.parametrize(
    "args",
    [[], ["nope"], ["run"], ["queue"], ["queue", "stats"], ["run", "p.toml", "--transfers", "0"]],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = in_process(args, capsys)
    assert code == 2
    assert "usage: databay-bus" in err


def test_commands_are_found_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command modules are listed once per process: a process that drops privileges after
    the first parse (the as-nobody CLI tests, in a checkout only root may list) keeps them."""
    from databay_bus.cli import _main, build_parser

    found = _main.command_modules()
    monkeypatch.setattr("pkgutil.iter_modules", lambda path: iter(()))
    assert _main.command_modules() == found
    assert "schedule" in build_parser().format_help()


def test_version(tmp_path: Path) -> None:
    done = cli(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("databay_bus ")


# -- validate ---------------------------------------------------------------------------------


def test_validate_prints_the_resolved_pipeline_and_opens_no_queue(work: Path) -> None:
    done = cli(work, "validate", str(work / "pipeline.toml"))
    assert done.returncode == 0, done.stderr
    assert "link 'e2e' every 0.1s (queued)" in done.stdout
    assert "outlet: pipeline_nodes.FlakyFileOutlet" in done.stdout
    assert done.stdout.rstrip().endswith("valid")
    assert not (work / "queue.sqlite3").exists()


def test_validate_reports_every_problem_with_its_key_path(work: Path) -> None:
    bad = work / "bad.toml"
    bad.write_text(
        PIPELINE.replace('interval = "100ms"', "interval = -5").replace(
            "pipeline_nodes.CountingInlet", "acme.sources.Foo"
        ),
        encoding="utf-8",
    )
    done = cli(work, "validate", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "links[0].interval: must be > 0, got -5" in done.stderr
    assert "links[0].inlets[0]: cannot import 'acme.sources.Foo'" in done.stderr


def test_validate_a_missing_file(work: Path) -> None:
    done = cli(work, "validate", str(work / "absent.toml"))
    assert done.returncode == 2
    assert "cannot read the file" in done.stderr


def test_validate_quiet(work: Path) -> None:
    done = cli(work, "validate", "-q", str(work / "pipeline.toml"))
    assert (done.returncode, done.stdout) == (0, "")


# -- run --------------------------------------------------------------------------------------


def test_run_a_few_transfers(work: Path) -> None:
    done = cli(work, "run", str(work / "pipeline.toml"), "--transfers", "3")
    assert done.returncode == 0, done.stderr
    assert "stopped (--transfers reached)" in done.stdout
    status = [line for line in done.stdout.splitlines() if line.startswith("e2e: ")]
    assert status and "transfers=" in status[0] and "pending=" in status[0]
    good = lines_of(work / "good.jsonl")
    assert len(good) >= 6
    assert [line["payload"]["n"] for line in good] == list(range(len(good)))
    stats = queue_stats(work)
    assert outlet_stats(stats, "good")["delivered"] == len(good)


def test_run_for_a_duration_logs_status_lines(work: Path) -> None:
    done = cli(
        work, "run", str(work / "pipeline.toml"), "--duration", "1.5", "--status-interval", "0.3"
    )
    assert done.returncode == 0, done.stderr
    assert "stopped (--duration reached)" in done.stdout
    assert "e2e: transfers=" in done.stderr  # the periodic INFO status lines


def test_run_an_invalid_pipeline_exits_2(work: Path) -> None:
    bad = work / "bad.toml"
    bad.write_text(PIPELINE.replace('interval = "100ms"', "interval = 0"), encoding="utf-8")
    done = cli(work, "run", str(bad), "--transfers", "1")
    assert done.returncode == 2
    assert "invalid pipeline" in done.stderr and "links[0].interval: must be > 0" in done.stderr


def test_run_exits_1_when_the_pipeline_fails(work: Path) -> None:
    failing = work / "failing.toml"
    failing.write_text(
        PIPELINE.replace("[queue]", "[unused]")
        .replace('path = "${WORK}/queue.sqlite3"', "")
        .replace("retry = { max_attempts = 1 }", "")
        .replace("[unused]", ""),
        encoding="utf-8",
    )
    (work / "broken").touch()  # unqueued: the failing outlet fails the transfer and the planner
    done = cli(work, "run", str(failing), "--duration", "60", "--fail-fast")
    assert done.returncode == 1
    assert "the pipeline stopped after an error" in done.stderr


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_until_a_signal_then_shut_down_gracefully(work: Path, sig: signal.Signals) -> None:
    process = start_cli(work, "run", str(work / "pipeline.toml"))
    with reaped(process):
        wait_for(lambda: len(lines_of(work / "good.jsonl")) >= 4, "four records delivered")
        process.send_signal(sig)
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert "stopped (signal received)" in out
    assert "shutting down gracefully" in err
    stats = queue_stats(work)  # the lock was released: the queue opens at once
    assert outlet_stats(stats, "good")["pending"] == 0


# -- kill, inspect, replay ----------------------------------------------------------------------


def test_kill_then_stats_dead_export_replay_redelivers(work: Path) -> None:
    (work / "broken").touch()
    process = start_cli(work, "run", str(work / "pipeline.toml"))
    try:
        wait_for(lambda: len(lines_of(work / "good.jsonl")) >= 6, "six records delivered")
    finally:
        process.kill()  # SIGKILL: no shutdown at all
        process.communicate(timeout=TIMEOUT)
    queue = str(work / "queue.sqlite3")

    stats = queue_stats(work)
    flaky = outlet_stats(stats, "flaky")
    assert flaky["dead"] >= 4
    assert flaky["delivered"] == 0
    assert stats["records"] >= len(lines_of(work / "good.jsonl"))

    table = cli(work, "queue", "stats", "--queue", queue)
    assert table.returncode == 0
    assert "flaky" in table.stdout and "dead" in table.stdout.splitlines()[1]

    dead = cli(work, "queue", "dead", "--queue", queue, "--json")
    assert dead.returncode == 0
    letters = [json.loads(line) for line in dead.stdout.splitlines()]
    assert len(letters) == flaky["dead"]
    assert all(x["outlet"] == "flaky" and "ConnectionError" in x["last_error"] for x in letters)
    assert all(isinstance(x["payload"]["n"], int) for x in letters)

    exported = cli(work, "queue", "export", "--queue", queue, "--what", "dead", "--format", "csv")
    assert exported.returncode == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["id"] for r in rows] == [x["id"] for x in letters]

    (work / "broken").unlink()
    replayed = cli(work, "queue", "replay", "--queue", queue, "--outlet", "flaky")
    assert replayed.returncode == 0
    assert f"replayed {flaky['dead']} dead deliveries" in replayed.stdout

    again = cli(work, "run", str(work / "pipeline.toml"), "--transfers", "1")
    assert again.returncode == 0, again.stderr
    flaky_ids = {line["id"] for line in lines_of(work / "flaky.jsonl")}
    good_ids = {line["id"] for line in lines_of(work / "good.jsonl")}
    assert {x["id"] for x in letters} <= flaky_ids
    assert flaky_ids == good_ids  # every stored record reached both outlets
    after = queue_stats(work)
    assert outlet_stats(after, "flaky")["dead"] == 0
    assert outlet_stats(after, "flaky")["pending"] == 0


def test_export_pending_records_that_wait_for_a_retry(work: Path) -> None:
    slow_retry = work / "retrying.toml"
    slow_retry.write_text(
        PIPELINE.replace("retry = { max_attempts = 1 }", 'retry = { initial_delay = "1h" }'),
        encoding="utf-8",
    )
    (work / "broken").touch()
    done = cli(work, "run", str(slow_retry), "--transfers", "2")
    assert done.returncode == 0, done.stderr
    stats = queue_stats(work)
    flaky = outlet_stats(stats, "flaky")
    assert flaky["pending"] == flaky["retrying"] > 0

    out_file = work / "pending.jsonl"
    queue = str(work / "queue.sqlite3")
    exported = cli(work, "queue", "export", "--queue", queue, "--output", str(out_file))
    assert exported.returncode == 0, exported.stderr
    assert f"exported {flaky['pending']} pending records" in exported.stdout
    rows = lines_of(out_file)
    assert {r["outlet"] for r in rows} == {"flaky"}
    assert sorted(r["payload"]["n"] for r in rows) == list(range(flaky["pending"]))

    refused = cli(work, "queue", "drop", "--queue", queue, "--state", "waiting")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    dropped = cli(work, "queue", "drop", "--queue", queue, "--state", "waiting", "--yes")
    assert dropped.returncode == 0
    assert f"dropped {flaky['pending']} deliveries" in dropped.stdout
    assert outlet_stats(queue_stats(work), "flaky")["pending"] == 0

    purged = cli(work, "queue", "purge", "--queue", queue)
    assert purged.returncode == 0 and purged.stdout.startswith("purged ")
    assert queue_stats(work)["records"] == 0


def test_queue_commands_on_a_missing_file(work: Path) -> None:
    done = cli(work, "queue", "stats", "--queue", str(work / "absent.sqlite3"))
    assert done.returncode == 1
    assert "no queue file at" in done.stderr


def test_queue_commands_refuse_a_queue_in_use(work: Path) -> None:
    from databay_bus.queue import SqliteQueue

    path = work / "held.sqlite3"
    with SqliteQueue(path):
        read = cli(work, "queue", "stats", "--queue", str(path))  # read-only: beside it
        done = cli(work, "queue", "replay", "--queue", str(path))  # a change: refused
    assert read.returncode == 0, read.stderr
    assert done.returncode == 1
    assert "cannot open the queue" in done.stderr and "in use by process" in done.stderr


def test_replay_of_an_unknown_id_fails(work: Path) -> None:
    from databay_bus.queue import SqliteQueue

    path = work / "q.sqlite3"
    SqliteQueue(path).close()
    done = cli(work, "queue", "replay", "--queue", str(path), "--id", "nope-1")
    assert done.returncode == 1
    assert "not a record id of this queue" in done.stderr


def test_export_delivered_records_until_they_are_purged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`queue export --what delivered` lists the delivered deliveries still kept (in process:
    the command is the same code as in a subprocess, minus an interpreter start)."""
    from databay_bus import Record
    from databay_bus.queue import SqliteQueue

    path = tmp_path / "queue.sqlite3"
    with SqliteQueue(path) as writer:
        ids = writer.enqueue("L", [Record({"n": 1}), Record({"n": 2})], [["a", "b"], ["a"]])
        writer.ack("L", "a", ids)
    code, out, err = in_process(
        ["queue", "export", "--queue", str(path), "--what", "delivered"], capsys
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["outlet"], r["state"], r["payload"]) for r in rows] == [
        (ids[0], "a", "delivered", {"n": 1}),
        (ids[1], "a", "delivered", {"n": 2}),
    ]
    assert all(r["delivered_at"] for r in rows)
    args = ["queue", "export", "--queue", str(path), "--what", "delivered", "--format", "csv"]
    code, out, err = in_process(args, capsys)
    assert code == 0, err
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == ids
    assert in_process(["queue", "purge", "--queue", str(path)], capsys)[0] == 0
    code, out, _ = in_process(
        ["queue", "export", "--queue", str(path), "--what", "delivered"], capsys
    )
    assert (code, out) == (0, "")
