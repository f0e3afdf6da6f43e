"""``python -m databay_bus demo``: the README's first command runs a real pipeline and ends."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")


def test_demo_moves_records_over_http_through_the_queue_to_csv_and_stdout(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "databay_bus",
            "demo",
            "--dir",
            str(tmp_path),
            "--transfers",
            "4",
            "--interval",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "demo finished: 4 transfers, 8 records pulled from http://127.0.0.1:" in out
    assert "(4 HTTP requests served)" in out
    assert f"csv        8 records -> {tmp_path / 'readings.csv'}" in out
    assert "8 records stored, 16 deliveries delivered, 0 pending, 0 dead" in out
    printed = [line for line in out.splitlines() if line.startswith("weather.")]
    assert len(printed) == 8  # PrintOutlet, one line per record
    with (tmp_path / "readings.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["station"], r["seq"]) for r in rows] == [
        (station, str(seq)) for seq in range(1, 5) for station in ("north", "south")
    ]
    assert (tmp_path / "pipeline.toml").is_file()
    assert done.stderr == ""


def test_the_demo_pipeline_file_validates(tmp_path: Path) -> None:
    from databay_bus._demo import PIPELINE_TEMPLATE
    from databay_bus.config import loads

    text = PIPELINE_TEMPLATE.format(url="http://127.0.0.1:1/readings", interval=0.5)
    pipeline = loads(text, dry_run=True, env={"PIPELINE_DIR": str(tmp_path)})
    assert [o.name for o in pipeline.links[0].outlets] == ["csv", "print"]
    pipeline.close()
