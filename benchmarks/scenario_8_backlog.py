"""Scenario 8: a backlog of queued records drained after an outlet comes back.

databay_bus only: Databay has no queue, so an outlet that is down loses what was pulled meanwhile
and there is no backlog to drain (its column says so).

One link at an interval of 60 s with ``queue=SqliteQueue(path)`` (defaults: ``batch_size=1000``,
``drain_budget`` half the interval: 30 s), an inlet returning 10 000 small dict payloads per
pull and one outlet:

* **fill**: the outlet raises on every push (it is down) while transfers queue N records
  (1 000 000 in the full run); each of these transfers also tries the outlet once, as a
  planner's ticks would (the retry delay is short, so nothing is held back for later);
* **drain**: the outlet is back and the inlet returns nothing new; ``link.transfer()`` runs
  until one delivers nothing, each call being what a planner's tick runs: a transfer goes on
  delivering chunks of ``batch_size`` while its budget lasts, so the figure that matters is
  how many ticks the drain takes (with ``drain_budget=0``, one chunk per tick, it took
  N / 1 000 ticks: 17 hours for 1 000 000 at 60 s). Figures: records delivered per second
  (back to back), the ticks that delivered and the longest, and the INFO lines the library
  logged while draining: progress every 5 s, and the drain's closing line.

Memory is the process's resident set (``VmRSS`` of ``/proc/self/status``, sampled every 20 ms
on a thread): its peak while draining minus the idle process (libraries imported, the queue
file open and empty). Target: <= 200 MB, i.e. the drain never holds the backlog in memory.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BUS,
    LE,
    Row,
    Unavailable,
    fmt_count,
    fmt_time,
    node_classes,
    status,
)
from benchmarks.scenario_2_batches import payloads

__all__ = ["ID", "TITLE", "cases", "measure", "summarize"]

ID = 8
TITLE = "backlog drain: N records queued while the outlet is down, then delivered"
FRESH_PROCESS = True
RSS_TARGET = 200 * 2**20
PULL_SIZE = 10_000
_SIZES = {"full": 1_000_000, "quick": 100_000, "smoke": 20_000}
_REPEATS = {"full": 1, "quick": 1, "smoke": 1}


def cases(mode: str) -> list[dict[str, Any]]:
    """One case: the backlog size of the mode."""
    size = _SIZES[mode]
    return [{"id": f"backlog n={size}", "size": size, "libs": [BUS], "repeats": _REPEATS[mode]}]


def _rss() -> int:
    """The resident set of this process in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status_file:
            for line in status_file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _PeakRss:
    """Samples the resident set every 20 ms on a thread; ``peak`` since the last ``reset``."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def reset(self) -> None:
        self.peak = _rss()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        return self.peak


class _Lines(logging.Handler):
    """Keeps the time of every INFO progress line of databay_bus, and each drain's last line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: list[float] = []
        self.ended: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "delivered so far" in message:
            self.times.append(time.monotonic())
        elif "backlog drain ended" in message:
            self.ended.append(message)


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Fill a queue with ``case['size']`` records while the outlet fails, then drain it."""
    try:
        from databay_bus import Link, Outlet
        from databay_bus.queue import RetryPolicy, SqliteQueue
    except ImportError as exc:
        raise Unavailable(f"databay_bus.queue: {exc}") from exc

    class SwitchOutlet(Outlet):
        """Raises while ``down``; counts what it is given otherwise."""

        def __init__(self) -> None:
            super().__init__(name="sink")
            self.down = True
            self.count = 0

        def push(self, records: list[Any], update: Any) -> None:
            if self.down:
                raise ConnectionError("sink is down")
            self.count += len(records)

    size = case["size"]
    folder = Path(tempfile.mkdtemp(prefix="databay-bench-backlog-"))
    logger = logging.getLogger("databay_bus")
    lines = _Lines()
    old_level = logger.level
    try:
        queue = SqliteQueue(folder / "queue.sqlite3")
        inlet = node_classes(lib)["ListInlet"](payloads(PULL_SIZE))
        outlet = SwitchOutlet()
        link = Link(
            [inlet],
            [outlet],
            60,
            tags="backlog",
            queue=queue,
            retry=RetryPolicy(max_attempts=None, initial_delay=0.001, max_delay=0.001, jitter=0),
        )
        idle = _rss()
        sampler = _PeakRss()
        link.on_start()
        warnings = logging.getLogger("databay_bus.delivery.queued")
        quiet = warnings.level
        warnings.setLevel(logging.CRITICAL)  # one 'outlet failed' WARNING per fill transfer
        started = time.perf_counter()
        for _ in range(size // PULL_SIZE):
            link.transfer()
        fill_s = time.perf_counter() - started
        warnings.setLevel(quiet)
        fill_peak = sampler.peak
        waiting = queue.waiting("backlog")
        if waiting != size:
            raise AssertionError(f"{waiting} records wait after the fill, expected {size}")

        inlet.payload = []
        outlet.down = False
        time.sleep(0.005)  # the failed records' retry delay has passed
        logger.addHandler(lines)
        logger.setLevel(logging.INFO)
        sampler.reset()
        before = _rss()
        transfers, ticks, longest = 0, 0, 0.0
        started = time.perf_counter()
        while True:
            delivered = outlet.count
            t0 = time.perf_counter()
            link.transfer()
            transfers += 1
            if outlet.count == delivered:
                break
            ticks += 1
            longest = max(longest, time.perf_counter() - t0)
        drain_s = time.perf_counter() - started
        drain_peak = sampler.stop()
        left = queue.waiting("backlog")
        link.on_shutdown()
        queue.close()
    finally:
        logger.removeHandler(lines)
        logger.setLevel(old_level)
        shutil.rmtree(folder, ignore_errors=True)
    if outlet.count != size or left:
        raise AssertionError(f"delivered {outlet.count} of {size}; {left} still waiting")
    gaps = [b - a for a, b in itertools.pairwise(lines.times)]
    return {
        "records": size,
        "fill_records_per_s": size / fill_s,
        "drain_records_per_s": size / drain_s,
        "drain_s": drain_s,
        "drain_transfers": transfers,
        "drain_ticks": ticks,
        "ticks_one_chunk_each": -(-size // 1000),
        "longest_transfer_s": longest,
        "first_progress_s": lines.times[0] - started if lines.times else 0.0,
        "progress_lines": len(lines.times),
        "longest_progress_gap_s": max(gaps, default=0.0),
        "end_lines": len(lines.ended),
        "end_line": lines.ended[-1] if lines.ended else "",
        "idle_rss": idle,
        "fill_peak_over_idle": fill_peak - idle,
        "drain_start_over_idle": before - idle,
        "drain_peak_over_idle": drain_peak - idle,
    }


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """Fill and drain rates, transfers, progress lines, peak memory against the target."""
    case = cases(mode)[0]
    side = results.get(case["id"], {}).get(BUS)
    size = f"{case['size']:,}"
    no_queue = "Databay: no queue"
    if not side or "drain_records_per_s" not in side:
        return [Row(ID, f"backlog of {size}: drain", no_queue, status(side))]
    mib = 2**20
    peak = side["drain_peak_over_idle"]
    progress = int(side["progress_lines"])
    ticks = int(side.get("drain_ticks", side["drain_transfers"]))
    before = int(side.get("ticks_one_chunk_each", 0))
    shown_gap = f", longest gap {fmt_time(side['longest_progress_gap_s'])}" if progress > 1 else ""
    first = f"first after {fmt_time(side['first_progress_s'])}{shown_gap}; " if progress else ""
    return [
        Row(
            ID,
            f"backlog of {size}: queued while the outlet is down",
            no_queue,
            fmt_count(side["fill_records_per_s"], "rec/s"),
        ),
        Row(
            ID,
            f"backlog of {size}: drain (ticks back to back, 60 s interval, drain_budget 30 s)",
            no_queue,
            fmt_count(side["drain_records_per_s"], "rec/s"),
            f"{fmt_time(side['drain_s'])} in {ticks:,} tick(s), longest "
            f"{fmt_time(side['longest_transfer_s'])}; one chunk per tick: {before:,} ticks "
            f"({before / 60:,.1f} h at 60 s)",
        ),
        Row(
            ID,
            f"backlog of {size}: peak RSS while draining, above the idle process",
            "—",
            f"{peak / mib:.0f} MB",
            f"idle {side['idle_rss'] / mib:.0f} MB; filling peaked "
            f"{side['fill_peak_over_idle'] / mib:.0f} MB above it",
            f"{LE} 200 MB",
            "met" if peak <= RSS_TARGET else "**missed**",
        ),
        Row(
            ID,
            f"backlog of {size}: INFO lines while draining (progress every 5 s + the end)",
            "—",
            f"{progress} + {int(side.get('end_lines', 0))}",
            f"{first}last: {side.get('end_line', '') or '—'}",
        ),
    ]
