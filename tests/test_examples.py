"""Every example runs in a subprocess, in bounded mode, and prints what its docstring says."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = ["--interval", "0.05"]
OWNED_ELSEWHERE = {"demo.py", "local_source.py"}


def lines_matching(pattern: str, output: str) -> list[str]:
    return [line for line in output.splitlines() if re.fullmatch(pattern, line)]


def check_basic_inlet(out: str, tmp: Path) -> None:
    assert len(lines_matching(r"thermometer\.\d+ \d+\.\d", out)) >= 3


def check_basic_outlet(out: str, tmp: Path) -> None:
    totals = [int(m) for m in re.findall(r"^tally\.\d+ got \d+, total (\d+)$", out, re.M)]
    assert len(totals) >= 3 and totals == sorted(totals)


def check_basic_metadata(out: str, tmp: Path) -> None:
    assert len(lines_matching(r"metadata\.\d+ loud says \d+", out)) >= 3
    assert "quiet" not in out


def check_asynchronous(out: str, tmp: Path) -> None:
    assert len(lines_matching(r"async\.\d+ received 5 readings", out)) >= 3
    assert len(lines_matching(r"async\.\d+ sensor-\d answered", out)) >= 15


def check_intermediate_inlet(out: str, tmp: Path) -> None:
    lines = out.splitlines()
    assert lines[0] == "opened orders.db" and lines[-1] == "closed orders.db"
    assert "orders.0 order 1: 1 x coffee (table=orders)" in lines
    assert "orders.0 order 2: 2 x cake (table=orders)" in lines
    orders = lines_matching(r"orders\.\d+ order (\d+): .*", out)
    numbers = [int(re.search(r"order (\d+)", line).group(1)) for line in orders]  # type: ignore[union-attr]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 4  # none twice


def check_intermediate_outlet(out: str, tmp: Path) -> None:
    even = (tmp / "even.jsonl").read_text(encoding="utf-8").splitlines()
    odd = (tmp / "odd.jsonl").read_text(encoding="utf-8").splitlines()
    assert even[:3] == ['{"n": 0}', '{"n": 2}', '{"n": 4}']
    assert odd[:3] == ['{"n": 1}', '{"n": 3}', '{"n": 5}']
    assert f"even.jsonl: {len(even)} lines" in out


def check_processors(out: str, tmp: Path) -> None:
    everything = lines_matching(r"all: (\d+)\.0 -> \1?0\.0", out)
    big = lines_matching(r"big: \d+\.0 -> \d+\.0", out)
    assert len(everything) >= 6
    assert big and all(float(line.split()[-1]) >= 60 for line in big)
    assert not re.search(r"all: \d*[13579]\.0", out)


def check_groupers(out: str, tmp: Path) -> None:
    assert "groupers.0 batch ['Oslo', 'Oslo']" in out
    assert "groupers.0 batch ['Lima', 'Lima']" in out
    assert "groupers.0 batch ['Pune']" in out
    assert "pairs.0 batch [1, 2]" in out and "pairs.0 batch [5]" in out


def check_buffers(out: str, tmp: Path) -> None:
    released = lines_matching(r"buffers\.\d+ released 4 records: \[.*\]", out)
    flushed = re.search(r"^flushed (\d+) records: (\[.*\])$", out, re.M)
    assert released and flushed
    payloads = [n for line in released for n in ast.literal_eval(line.split(": ", 1)[1])]
    payloads += ast.literal_eval(flushed.group(2))
    assert payloads == list(range(len(payloads)))  # nothing lost, nothing twice


def check_start_shutdown(out: str, tmp: Path) -> None:
    lines = out.splitlines()
    assert lines.count("shared-inlet: on_start") == 3
    assert lines.count("shared-inlet: on_shutdown") == 3
    assert lines[-1] == "-- done"
    active = False
    for line in lines:  # no data outside on_start ... on_shutdown of the shared inlet
        if line == "shared-inlet: on_start":
            active = True
        elif line == "shared-inlet: on_shutdown":
            active = False
        elif line.startswith("outlet-") and "data of" in line:
            assert active, line


def check_exception_handling(out: str, tmp: Path) -> None:
    assert lines_matching(r"ignoring\.\d+ steady \d+", out)
    assert "strict planner stopped after a failure: True" in out
    assert lines_matching(r"lenient\.\d+ flaky \d+", out)


def check_logging_setup(out: str, tmp: Path) -> None:
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert lines_matching(stamp + r"\|D\| logging\.0 transfer \(databay_bus\.link\)", out)
    assert lines_matching(stamp + r"\|I\| Starting .* \(databay_bus\.planners\.base\)", out)


def check_custom_planner(out: str, tmp: Path) -> None:
    assert len(lines_matching(r"fast\.\d+ \d+", out)) >= 3
    assert lines_matching(r"slow\.\d+ tick", out)
    assert out.splitlines()[-1] == "stopped"


def check_http_to_csv(out: str, tmp: Path) -> None:
    rows = (tmp / "prices.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "symbol,price,request"
    assert rows.count("symbol,price,request") == 1
    assert len(rows) - 1 >= 9 and f"wrote {len(rows) - 1} rows" in out


def check_http_to_mongo(out: str, tmp: Path) -> None:
    if os.environ.get("DATABAY_BUS_MONGO_URI"):
        assert re.search(r"stored \d+ documents in databay_bus_example_\w+\.prices", out)
    else:
        assert "no MongoDB server given" in out


def check_durable_queue(out: str, tmp: Path) -> None:
    assert "codec: OrjsonCodec" in out.splitlines()
    runs = lines_matching(r"run \d: console got \d+ records, warehouse got \d+; .*", out)
    assert runs == [
        "run 1: console got 6 records, warehouse got 0; pending for warehouse: 6",
        "run 2: console got 0 records, warehouse got 6; pending for warehouse: 0",
    ]
    assert (tmp / "queue.sqlite3").exists()


def check_backlog_drain(out: str, tmp: Path) -> None:
    assert "outlet down: 4 transfers queued 8000 readings" in out
    # a budget of 30 s for 16 chunks of 50 ms: one transfer drains them all
    assert lines_matching(r"transfer \d+: .*", out) == ["transfer 1: delivered 8000, 0 waiting"]


def check_redis_streams(out: str, tmp: Path) -> None:
    if "skipped" in out and os.environ.get("DATABAY_BUS_REQUIRE_SERVICES") != "1":
        assert "no Redis server reachable" in out
        return
    assert re.search(r"produced 6 entries on stream databay_bus_example_\w+", out)
    assert "consumer transfer 1 failed (the store is down): 6 entries pending" in out
    assert "consumer transfer 2: 6 records stored and delivered; pending entries: 0" in out


def check_incremental_cursor(out: str, tmp: Path) -> None:
    assert lines_matching(r"run \d.*", out) == [
        "run 1: cursor None -> read changes 1..4",
        "run 1: cursor 4 -> read changes 5..8",
        "run 1 ended; stored cursor: 8",
        "run 2: cursor 8 -> read changes 9..12",
        "run 2: cursor 12 -> read changes 13..16",
        "run 2 ended; stored cursor: 16",
    ]
    assert out.splitlines()[-1] == "every change was delivered exactly once"


def check_routing(out: str, tmp: Path) -> None:
    assert out.splitlines()[-1] == "every record reached exactly the outlets its route names"
    transfers = len(lines_matching(r'alert: \{"headline": "story \d+"\}', out))
    assert transfers >= 3
    assert f"prices.csv: {2 * transfers} rows" in out
    assert f"archive.jsonl: {2 * transfers} lines" in out  # headlines + heartbeats (default)
    rows = (tmp / "prices.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "symbol,price" and len(rows) == 2 * transfers + 1


def check_cron_schedules(out: str, tmp: Path) -> None:
    assert "  2026-03-29 03:00:00+02:00  = 01:00 UTC" in out  # 02:30 is in the gap
    spring, fall = out.split("-- fall back")

    def ran(link: str, text: str) -> list[str]:
        return sorted(
            line.split(" at ")[1] for line in lines_matching(rf"{link}\.\d+ ran at .*", text)
        )

    assert ran("daily", spring) == ["2026-03-29 03:00 CEST"]
    assert ran("hourly", spring) == sorted(
        ["2026-03-29 01:00 CET", "2026-03-29 03:00 CEST", "2026-03-29 04:00 CEST",
         "2026-03-29 05:00 CEST"]
    )  # fmt: skip
    assert ran("daily", fall.split("-- real")[0]) == ["2026-10-25 02:30 CEST"]
    assert ran("hourly", fall) == sorted(
        ["2026-10-25 02:00 CEST", "2026-10-25 02:00 CET", "2026-10-25 03:00 CET",
         "2026-10-25 04:00 CET"]
    )  # fmt: skip
    assert len(lines_matching(r"seconds\.\d+ ran at \d\d:\d\d:\d\d", out)) >= 2


def check_web_interface(out: str, tmp: Path) -> None:
    assert re.match(r"serving http://127\.0\.0\.1:\d+ as DEMO \(log in as admin / demo\)", out)
    assert "readyz: ready" in out
    orders = re.search(
        r"^orders: (ok|failing), (\d+) transfers, (\d+) pulled, (\d+) dead$", out, re.M
    )
    assert orders and int(orders.group(2)) >= 3 and int(orders.group(4)) >= 3
    assert re.search(r"^sensors: ok, \d+ transfers, \d+ pulled, 0 dead$", out, re.M)
    assert re.search(r'^metrics: databay_bus_transfers_total\{link="orders"\} \d+\.0$', out, re.M)


def check_scaling_out(out: str, tmp: Path) -> None:
    if out.startswith("skipped") and os.environ.get("DATABAY_BUS_REQUIRE_POSTGRES") != "1":
        return
    assert len(lines_matching(r"worker w\d: pulled \d+ ticks, pushed \d+ records", out)) == 2
    summary = re.search(
        r"^2 workers: (\d+) ticks, each pulled by one process; (\d+) records stored, "
        r"(\d+) delivered, 0 waiting$",
        out,
        re.M,
    )
    assert summary and int(summary.group(1)) >= 3
    assert summary.group(2) == summary.group(3)


def check_unattended(out: str, tmp: Path) -> None:
    assert out.splitlines() == [
        "source: 2 failed pulls, retried with backoff",
        "rows.jsonl: every row but the poison one, each written once",
        "dead letter: 'n/a' after 2 attempts: TypeError: row must be a dict, got 'n/a'",
    ]


CASES: dict[str, tuple[list[str], Callable[[str, Path], None]]] = {
    "basic_inlet.py": (["--transfers", "3"], check_basic_inlet),
    "basic_outlet.py": (["--transfers", "3"], check_basic_outlet),
    "basic_metadata.py": (["--transfers", "3"], check_basic_metadata),
    "asynchronous.py": (["--transfers", "3", "--delay", "0.02"], check_asynchronous),
    "intermediate_inlet.py": (["--transfers", "4"], check_intermediate_inlet),
    "intermediate_outlet.py": (
        ["--transfers", "3", "--output-dir", "{tmp}"],
        check_intermediate_outlet,
    ),
    "processors.py": (["--transfers", "3"], check_processors),
    "groupers.py": (["--transfers", "2"], check_groupers),
    "buffers.py": (["--transfers", "7"], check_buffers),
    "start_shutdown.py": (["--transfers", "2"], check_start_shutdown),
    "exception_handling.py": (["--transfers", "4"], check_exception_handling),
    "logging_setup.py": (["--transfers", "2"], check_logging_setup),
    "custom_planner.py": (["--transfers", "3"], check_custom_planner),
    "http_to_csv.py": (["--transfers", "3", "--output", "{tmp}/prices.csv"], check_http_to_csv),
    "http_to_mongo.py": (["--transfers", "3"], check_http_to_mongo),
    "durable_queue.py": (
        ["--transfers", "2", "--path", "{tmp}/queue.sqlite3", "--codec", "orjson"],
        check_durable_queue,
    ),
    "backlog_drain.py": (["--transfers", "4", "--drain-budget", "30"], check_backlog_drain),
    "routing.py": (["--transfers", "3", "--output-dir", "{tmp}"], check_routing),
    "cron_schedules.py": (["--transfers", "2"], check_cron_schedules),
    "unattended.py": (["--transfers", "4", "--output-dir", "{tmp}"], check_unattended),
    "redis_streams.py": (["--transfers", "2"], check_redis_streams),
    "incremental_cursor.py": (
        ["--transfers", "2", "--path", "{tmp}/changes.db"],
        check_incremental_cursor,
    ),
    "web_interface.py": (["--transfers", "3", "--port", "0"], check_web_interface),
    "scaling_out.py": (["--duration", "2", "--workers", "2"], check_scaling_out),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", sorted(CASES))
def test_example(script: str, tmp_path: Path) -> None:
    arguments, check = CASES[script]
    by_hand = (
        "backlog_drain.py",
        "durable_queue.py",
        "incremental_cursor.py",
        "redis_streams.py",
        "scaling_out.py",
    )
    fast = [] if script in by_hand else FAST
    command = [sys.executable, str(EXAMPLES / script), *fast]
    command += [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=100, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    check(done.stdout, tmp_path)


def test_every_example_is_tested_and_documented() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - OWNED_ELSEWHERE
    assert scripts == set(CASES)
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in scripts:
        assert f"`{script}`" in readme, f"{script} missing from examples/README.md"
        tree = ast.parse((EXAMPLES / script).read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree) or ""
        assert "Run:" in docstring and "Prints" in docstring, script
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), script
