"""Scenario 3: timing accuracy of the planners.

20 links at 0.1 s for 10 s (3 s in --quick) on ApsPlanner and on SchedulePlanner
(refresh_interval=0.1). Every inlet stamps ``time.time()`` when it is pulled. The k-th transfer
of a link is due at start + k * interval, start being the moment the planner was given its
links (both libraries anchor their grid there or at start(), a few ms apart).

* lateness: i-th observed transfer minus its due time (so a dropped or late transfer makes
  every later one late too);
* drift: per link, median lateness of its last 5 transfers minus that of its first 5 (median
  over links): how far the schedule slid during the run;
* dropped: transfers due before shutdown that never happened, as a share of those due.

Targets, both planners: p99 lateness <= 5 ms, |drift| <= 5 ms, nothing dropped.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import (
    BUS,
    DATABAY,
    LE,
    LIBS,
    Row,
    make_link,
    node_classes,
    percentile,
    planners,
    status,
    verdict,
)

__all__ = ["ID", "TITLE", "cases", "grid_stats", "measure", "summarize"]

ID = 3
TITLE = "20 links at 0.1 s: lateness, drift, dropped transfers"
FRESH_PROCESS = True  # Databay's SchedulePlanner uses the module-global schedule scheduler
LINKS = 20
INTERVAL = 0.1
P99_TARGET = 0.005
DRIFT_TARGET = 0.005
_DURATION = {"full": 10.0, "quick": 3.0, "smoke": 0.5}
_REPEATS = {"full": 3, "quick": 1, "smoke": 1}


def cases(mode: str) -> list[dict[str, Any]]:
    """One case per planner."""
    return [
        {"id": planner, "planner": planner, "libs": list(LIBS), "repeats": _REPEATS[mode]}
        for planner in ("ApsPlanner", "SchedulePlanner")
    ]


def grid_stats(
    stamps: list[list[float]], start: float, stop: float, interval: float
) -> dict[str, float]:
    """Lateness, drift and dropped share of per-link transfer stamps against the grid."""
    lateness: list[float] = []
    drifts: list[float] = []
    due_total = observed = 0
    due = int((stop - start) / interval) + 1  # k = 0 .. (stop - start) / interval
    for link_stamps in stamps:
        ordered = sorted(link_stamps)
        late = [t - (start + k * interval) for k, t in enumerate(ordered[:due])]
        lateness += late
        if late:
            edge = max(1, min(5, len(late) // 2))
            drifts.append(statistics.median(late[-edge:]) - statistics.median(late[:edge]))
        due_total += due
        observed += min(len(ordered), due)
    return {
        "p50_lateness_s": percentile(lateness, 50),
        "p99_lateness_s": percentile(lateness, 99),
        "max_lateness_s": max(lateness) if lateness else float("nan"),
        "drift_s": statistics.median(drifts) if drifts else float("nan"),
        "dropped_share": 1 - observed / due_total if due_total else float("nan"),
        "due": due_total,
        "observed": observed,
    }


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Run the planner for the duration and compare every pull with its due time."""
    nodes = node_classes(lib)
    stamps: list[list[float]] = [[] for _ in range(LINKS)]
    links = [
        make_link(lib, [nodes["StampInlet"](stamps[i])], [nodes["CountOutlet"]()], INTERVAL)
        for i in range(LINKS)
    ]
    module = planners(lib)
    options: dict[str, Any] = {}
    if case["planner"] == "SchedulePlanner":
        options["refresh_interval"] = INTERVAL
    duration = _DURATION[mode]
    start = time.time()
    planner = getattr(module, case["planner"])(links=links, **options)
    thread = None
    if lib == BUS:
        planner.start(block=False)
    else:  # Databay's start() blocks until shutdown
        thread = threading.Thread(target=planner.start, daemon=True)
        thread.start()
    # Stop half an interval after the last due time, so the last due transfer counts.
    stop = start + duration + INTERVAL / 2
    time.sleep(max(0.0, stop - time.time()))
    planner.shutdown(wait=True)
    if thread is not None:
        thread.join(timeout=10)
    stats = grid_stats(stamps, start, start + duration, INTERVAL)
    stats["duration_s"] = duration
    return stats


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """Three rows per planner: p99 lateness, drift, dropped transfers."""
    rows = []
    for case in cases(mode):
        sides = results.get(case["id"], {})
        old, new = sides.get(DATABAY, {}), sides.get(BUS, {})
        name = f"{case['planner']}: "
        checks: list[tuple[str, str, Callable[[float], str], str, Callable[[float], bool]]] = [
            ("p99_lateness_s", "p99 lateness", _ms, f"{LE} 5 ms", lambda v: v <= P99_TARGET),
            (
                "drift_s",
                "cumulative drift",
                _ms_signed,
                "drift within ±5 ms",
                lambda v: abs(v) <= DRIFT_TARGET,
            ),
            ("dropped_share", "dropped transfers", _pct, "0 %", lambda v: v <= 0),
        ]
        for key, label, fmt, target, check in checks:
            a, b = old.get(key), new.get(key)
            rows.append(
                Row(
                    ID,
                    name + label,
                    fmt(a) if a is not None else status(sides.get(DATABAY)),
                    fmt(b) if b is not None else status(sides.get(BUS)),
                    "—",
                    target,
                    verdict(None if b is None else check(b)),
                )
            )
    return rows


def _ms(value: float) -> str:
    return f"{value * 1e3:.2f} ms"


def _ms_signed(value: float) -> str:
    return f"{value * 1e3:+.2f} ms"


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"
