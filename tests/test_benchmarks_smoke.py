"""The benchmark harness still runs: its quickest mode, databay_bus only (no speed asserts)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from processes import reaped

from benchmarks._common import BUS, median_metrics, percentile
from benchmarks.scenario_3_timing import grid_stats

REPO = Path(__file__).resolve().parent.parent


def test_smoke_run_produces_figures_for_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    results_md = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--bus-only",
            "--json",
            str(out),
            "--results",
            str(results_md),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = report["rows"]
    assert {row["scenario"] for row in rows} == {1, 2, 3, 4, 5, 6, 7, 8}
    assert not [row for row in rows if row["bus"] == "error"], done.stdout
    # Scenarios on the core always have a databay_bus figure; queue and HTTP may still be absent.
    for row in rows:
        if row["scenario"] in (1, 2, 3, 4):
            assert row["bus"][0].isdigit() or row["bus"][0] in "+-", row
    backlog = report["results"]["8"]["backlog n=20000"]["databay_bus"]
    assert backlog["drain_records_per_s"] > 0 and backlog["drain_ticks"] >= 1
    transfer = report["results"]["1"]["sync nodes"]["databay_bus"]
    assert transfer["s_per_transfer"] > 0
    assert "databay" not in report["results"]["1"]["sync nodes"]  # --bus-only
    table = results_md.read_text(encoding="utf-8")
    assert "| # | case |" in table and "smoke run" in table


def test_grid_stats_counts_late_and_dropped_transfers() -> None:
    start, interval = 100.0, 0.1
    on_time = [start + k * interval for k in range(11)]
    late = [t + 0.002 for t in on_time[:6]] + [t + 0.012 for t in on_time[6:10]]  # one missing
    stats = grid_stats([on_time, late], start, start + 1.0, interval)
    assert stats["due"] == 22 and stats["observed"] == 21
    assert abs(stats["dropped_share"] - 1 / 22) < 1e-9
    assert abs(stats["max_lateness_s"] - 0.012) < 1e-9
    assert abs(stats["drift_s"] - 0.005) < 1e-9  # median of (0 ms, +10 ms)


def test_median_metrics_and_percentile() -> None:
    merged = median_metrics([{"t": 3.0, "name": "a"}, {"t": 1.0, "name": "b"}, {"t": 2.0}])
    assert merged == {"t": 2.0, "name": "a", "repeats": 3}
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 99) == 5.0


def test_worker_gets_pythons_sigint_handler_even_when_started_with_sigint_ignored() -> None:
    """A runner started with ``nohup ... &`` hands its workers SIGINT ignored, which makes
    asyncio.run (Databay's transfer) cheaper than in a normally started program; the worker
    puts Python's handler back, so Ctrl-C interrupts it and figures do not depend on it."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._worker", "--lib", BUS],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    with reaped(worker):
        assert worker.stdin is not None and worker.stdout is not None
        case = {"id": "sync nodes", "nodes": "sync", "libs": [BUS], "repeats": 1}
        worker.stdin.write(json.dumps({"scenario": 1, "case": case, "mode": "smoke"}) + "\n")
        worker.stdin.flush()
        assert "result" in json.loads(worker.stdout.readline())  # it is up and measuring
        worker.send_signal(signal.SIGINT)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode != 0
    assert "KeyboardInterrupt" in stderr
