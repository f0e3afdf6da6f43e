"""Benchmark harness: the scenarios of issue 5 on Databay 0.3.0 and on databay_bus, side by side.

Usage (from the repository root)::

    python -m benchmarks                 # full run, ~15 min; appends a table to RESULTS.md
    python -m benchmarks --quick         # about a minute, smaller sizes, fewer repeats
    python -m benchmarks --only 1,2      # some scenarios only
    python -m benchmarks --bus-only      # databay_bus only (no Databay venv needed)

Databay runs in its own venv, ``benchmarks/.venv-databay`` (made on first use with
``databay==0.3.0``, ``apscheduler<4``, ``schedule<1``, ``aiohttp`` and ``persist-queue``);
databay_bus runs in the interpreter that runs this script. Each library is measured in a worker
subprocess; within a run the two libraries alternate sample by sample (A B A B ...) because
this machine's speed drifts, and every figure is the median of the repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import queue
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BUS, DATABAY, MODES, Row, median_metrics
from benchmarks._worker import SCENARIO_MODULES

__all__ = ["BENCH_DIR", "REPO", "Worker", "ensure_databay_venv", "machine_info", "main"]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv-databay"
VENV_PACKAGES = ["databay==0.3.0", "apscheduler<4", "schedule<1", "aiohttp", "persist-queue"]
VENV_CHECK = (
    "import databay, databay.planners, databay.inlets, persistqueue, aiohttp; "
    "assert databay.__version__ == '0.3.0' if hasattr(databay, '__version__') else True"
)
SAMPLE_TIMEOUT = 300.0


def venv_python(venv: Path = VENV) -> Path:
    """The interpreter of a venv."""
    return venv / "bin" / "python"


def ensure_databay_venv(venv: Path = VENV) -> Path:
    """Make (or repair) the Databay venv and return its interpreter.

    Databay 0.3.0 imports cleanly under Python 3.11, so no workaround is applied; the check
    below imports everything the scenarios use and rebuilds the venv if that fails.
    """
    python = venv_python(venv)
    if python.exists() and _imports_ok(python):
        return python
    print(f"creating {venv} with {' '.join(VENV_PACKAGES)} ...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *VENV_PACKAGES,
        ],
        check=True,
    )
    if not _imports_ok(python):
        raise RuntimeError(f"{venv}: Databay does not import after installation")
    return python


def _imports_ok(python: Path) -> bool:
    check = subprocess.run(
        [str(python), "-c", VENV_CHECK], cwd=REPO, capture_output=True, text=True, check=False
    )
    return check.returncode == 0


class Worker:
    """A measurement subprocess for one library, spoken to in JSON lines."""

    def __init__(self, lib: str, python: Path | str, log: IO[str]) -> None:
        self.lib = lib
        self._process = subprocess.Popen(
            [str(python), "-m", "benchmarks._worker", "--lib", lib],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
        )
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def call(self, scenario: int, case: dict[str, Any], mode: str) -> dict[str, Any]:
        """Run one sample; a crash or timeout becomes ``{"error": ...}``."""
        assert self._process.stdin is not None
        request = {"scenario": scenario, "case": case, "mode": mode}
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._lines.get(timeout=SAMPLE_TIMEOUT)
        except (OSError, queue.Empty) as exc:
            self.close()
            return {"error": f"{self.lib} worker failed: {exc!r}"}
        if not line:
            return {"error": f"{self.lib} worker exited with {self._process.wait()}"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within 30 s."""
        with contextlib.suppress(OSError):
            assert self._process.stdin is not None
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def machine_info(disk_path: str) -> dict[str, str]:
    """CPU model, cores, Python, disk of ``disk_path``, load average."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "disk": _disk(disk_path),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _disk(path: str) -> str:
    best, device, fstype = "", "?", "?"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                best, device, fstype = parts[1], parts[0], parts[2]
    name = os.path.basename(device)
    kind = ""
    with contextlib.suppress(OSError), open(f"/sys/block/{name}/queue/rotational") as rot:
        kind = ", kernel: rotational" if rot.read().strip() == "1" else ", non-rotational"
    usage = shutil.disk_usage(path)
    return f"{device} ({fstype}{kind}, {usage.total / 2**30:.0f} GiB) mounted on {best}"


def _parse_only(text: str | None) -> list[int]:
    if not text:
        return sorted(SCENARIO_MODULES)
    chosen = sorted({int(part) for part in text.split(",") if part.strip()})
    unknown = [n for n in chosen if n not in SCENARIO_MODULES]
    if unknown:
        raise SystemExit(f"--only: no scenario {unknown}; choose from {sorted(SCENARIO_MODULES)}")
    return chosen


def run_scenario(
    number: int,
    mode: str,
    libs: list[str],
    pythons: dict[str, Path | str],
    log: IO[str],
    raw: dict[str, Any],
) -> list[Row]:
    """Measure every case of one scenario, alternating the libraries; return its rows."""
    module = importlib.import_module(SCENARIO_MODULES[number])
    fresh = bool(getattr(module, "FRESH_PROCESS", False))
    print(f"\n== scenario {number}: {module.TITLE}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    workers: dict[str, Worker] = {}
    context = getattr(module, "runner_context", None)
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = stack.enter_context(context(mode)) if context else {}
        cases = [{**case, **extra} for case in module.cases(mode)]
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {c["id"]: {} for c in cases}
        stopped: dict[str, dict[str, Any]] = {c["id"]: {} for c in cases}
        try:
            # Rounds: every case and library once per round, libraries alternating (A B A B),
            # so a drift in machine speed spreads over all figures alike.
            for round_ in range(max(case["repeats"] for case in cases)):
                for case in cases:
                    if round_ >= case["repeats"]:
                        continue
                    for lib in (lib for lib in case["libs"] if lib in libs):
                        if lib in stopped[case["id"]]:
                            continue  # unavailable or failed: not retried every round
                        if fresh or lib not in workers or not workers[lib].alive:
                            if lib in workers:
                                workers.pop(lib).close()
                            workers[lib] = Worker(lib, pythons[lib], log)
                        answer = workers[lib].call(number, case, mode)
                        if fresh:
                            workers.pop(lib).close()
                        if "result" in answer:
                            samples[case["id"]].setdefault(lib, []).append(answer["result"])
                        else:
                            stopped[case["id"]][lib] = answer
            for case in cases:
                outcome = dict(stopped[case["id"]])
                for lib, taken in samples[case["id"]].items():
                    outcome.setdefault(lib, median_metrics(taken))
                for lib in (lib for lib in case["libs"] if lib in outcome):
                    _print_side(number, case["id"], lib, outcome[lib])
                results[case["id"]] = outcome
        finally:
            for worker in workers.values():
                worker.close()
    raw[str(number)] = results
    rows: list[Row] = module.summarize(mode, results)
    for row in rows:
        print(
            f"   -> {row.case}: Databay/baseline {row.databay} | databay_bus {row.bus} | "
            f"{row.ratio} | target {row.target}: {row.verdict}",
            flush=True,
        )
    return rows


def _print_side(number: int, case: str, lib: str, side: dict[str, Any]) -> None:
    if "unavailable" in side:
        text = f"not available yet ({side['unavailable']})"
    elif "error" in side:
        text = "ERROR\n" + str(side["error"]).rstrip()
    else:
        text = ", ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in side.items()
        )
    print(f"   [{number}] {case} | {lib}: {text}", flush=True)


def markdown(
    rows: list[Row], info: dict[str, str], mode: str, argv: list[str], note: str, end_load: str
) -> str:
    """The results section appended to RESULTS.md."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    lines = [
        f"## {stamp} — {mode} run",
        "",
        f"- Command: `{command}`",
        f"- Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['os']}",
        f"- Disk (queue and SQLite files): {info['disk']}",
        f"- Load average (1, 5, 15 min) at start: {info['load']}; at end: {end_load}",
        "- Figures are medians of the repeats; Databay 0.3.0 and databay_bus alternate sample"
        " by sample.",
    ]
    if note:
        lines.append(f"- Note: {note}")
    lines += [
        "",
        "| # | case | Databay 0.3.0 / baseline | databay_bus | ratio | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [str(row.scenario), row.case, row.databay, row.bus, row.ratio, row.target]
        lines.append("| " + " | ".join([*cells, row.verdict]) + " |")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _log_file() -> Iterator[IO[str]]:
    """A file for the workers' stderr; removed afterwards unless something was written."""
    with tempfile.NamedTemporaryFile(
        "w+", prefix="databay-bench-", suffix=".log", delete=False
    ) as log:
        yield log
    if os.path.getsize(log.name) == 0:
        os.unlink(log.name)
    else:
        print(f"worker stderr kept in {log.name}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about a minute in all")
    size.add_argument("--smoke", action="store_true", help="a few seconds (for the test suite)")
    parser.add_argument("--only", metavar="N,M", help="run only these scenarios (1-8)")
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--databay-only", action="store_true", help="measure Databay only")
    side.add_argument("--bus-only", action="store_true", help="measure databay_bus only")
    parser.add_argument(
        "--results",
        type=Path,
        default=BENCH_DIR / "RESULTS.md",
        help="markdown file the table is appended to (default: benchmarks/RESULTS.md)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to --results")
    parser.add_argument("--json", type=Path, help="also write raw medians and rows as JSON here")
    parser.add_argument("--note", default="", help="a note written under the table heading")
    args = parser.parse_args(argv)

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    assert mode in MODES
    scenarios = _parse_only(args.only)
    libs = [DATABAY] if args.databay_only else [BUS] if args.bus_only else [DATABAY, BUS]
    pythons: dict[str, Path | str] = {BUS: sys.executable}
    if DATABAY in libs:
        pythons[DATABAY] = ensure_databay_venv()
    info = machine_info(tempfile.gettempdir())
    print(
        f"mode={mode} scenarios={scenarios} libraries={libs}\n"
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"load {info['load']}",
        flush=True,
    )
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    started = time.monotonic()
    with _log_file() as log:
        for number in scenarios:
            rows += run_scenario(number, mode, libs, pythons, log, raw)
    end_load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = markdown(rows, info, mode, argv, args.note, end_load)
    print(f"\n{table}\n(total {time.monotonic() - started:.0f} s)")
    if not args.no_record:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n" + table)
        print(f"appended to {args.results}")
    if args.json:
        payload = {
            "mode": mode,
            "machine": info,
            "results": raw,
            "rows": [row.__dict__ for row in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
