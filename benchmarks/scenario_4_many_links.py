"""Scenario 4: many links on one planner.

100, 1 000 and 10 000 links at 60 s (no transfer happens during the measurement; planner-level
``immediate_transfer=False``), on ApsPlanner and SchedulePlanner:

* add + start: from constructing the planner with the (already built) links until it runs
  (Databay's ``start()`` blocks, so it runs on a thread and ``planner.running`` is polled);
* shutdown: the ``shutdown(wait=True)`` call;
* memory per link: traced Python memory (tracemalloc) from before the links are built until the
  planner runs, divided by the number of links, measured in a separate sample (tracing slows
  everything down). "shared nodes": all links share one inlet and one outlet, so the figure is
  the cost of the link and its schedule; "own nodes": every link has its own trivial inlet and
  outlet.

Targets (ApsPlanner): add + start <= 0.5x Databay's time; <= 2 KB per link; shutdown <= 50 ms.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from typing import Any

from benchmarks._common import (
    BUS,
    DATABAY,
    LE,
    LIBS,
    TIMES,
    Row,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    make_link,
    node_classes,
    planners,
    status,
    verdict,
)

__all__ = ["ID", "TITLE", "cases", "measure", "summarize"]

ID = 4
TITLE = "100 / 1 000 / 10 000 links at 60 s: add + start, memory, shutdown"
FRESH_PROCESS = True
START_RATIO_TARGET = 0.5
MEMORY_TARGET = 2048
SHUTDOWN_TARGET = 0.050
_SIZES = {"full": (100, 1_000, 10_000), "quick": (100, 1_000), "smoke": (10,)}
_REPEATS = {"full": 3, "quick": 1, "smoke": 1}
PLANNERS = ("ApsPlanner", "SchedulePlanner")


def cases(mode: str) -> list[dict[str, Any]]:
    """Timing cases per planner and size, then memory cases at the largest size."""
    found = [
        {
            "id": f"{planner} n={n} time",
            "planner": planner,
            "n": n,
            "what": "time",
            "nodes": "shared",
            "libs": list(LIBS),
            "repeats": _REPEATS[mode],
        }
        for planner in PLANNERS
        for n in _SIZES[mode]
    ]
    largest = _SIZES[mode][-1]
    found += [
        {
            "id": f"{planner} n={largest} memory {nodes} nodes",
            "planner": planner,
            "n": largest,
            "what": "memory",
            "nodes": nodes,
            "libs": list(LIBS),
            "repeats": 1,
        }
        for planner in PLANNERS
        for nodes in ("shared", "own")
    ]
    return found


def _links(lib: str, n: int, own_nodes: bool) -> list[Any]:
    nodes = node_classes(lib)
    inlet, outlet = nodes["ListInlet"](1), nodes["CountOutlet"]()
    links = []
    for _ in range(n):
        if own_nodes:
            inlet, outlet = nodes["ListInlet"](1), nodes["CountOutlet"]()
        links.append(make_link(lib, [inlet], [outlet], 60.0))
    return links


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Add + start and shutdown times, or memory per link."""
    planner_class = getattr(planners(lib), case["planner"])
    n, memory = case["n"], case["what"] == "memory"
    gc.collect()
    if memory:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
    links = _links(lib, n, case["nodes"] == "own")
    started = time.perf_counter()
    planner = planner_class(links=links, immediate_transfer=False)
    thread = None
    if lib == BUS:
        planner.start(block=False)
    else:  # Databay's start() blocks until shutdown
        thread = threading.Thread(target=planner.start, daemon=True)
        thread.start()
        while not planner.running:
            time.sleep(0.0002)
    add_start = time.perf_counter() - started
    result: dict[str, Any] = {}
    if memory:
        time.sleep(0.2)
        gc.collect()
        result["bytes_per_link"] = (tracemalloc.get_traced_memory()[0] - baseline) / n
        tracemalloc.stop()
    else:
        result["add_start_s"] = add_start
    stopping = time.perf_counter()
    planner.shutdown(wait=True)
    if not memory:
        result["shutdown_s"] = time.perf_counter() - stopping
    if thread is not None:
        thread.join(timeout=30)
    return result


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """Rows for add + start and shutdown per size, then memory per link."""
    rows = []
    for case in cases(mode):
        sides = results.get(case["id"], {})
        old, new = sides.get(DATABAY, {}), sides.get(BUS, {})
        aps = case["planner"] == "ApsPlanner"
        label = f"{case['planner']}, {case['n']:,} links: "
        if case["what"] == "time":
            a, b = old.get("add_start_s"), new.get("add_start_s")
            ratio = b / a if a and b else None
            rows.append(
                Row(
                    ID,
                    label + "add + start",
                    fmt_time(a) if a else status(sides.get(DATABAY)),
                    fmt_time(b) if b else status(sides.get(BUS)),
                    fmt_ratio(1 / ratio, "less time", "more time") if ratio else "—",
                    f"{LE} {START_RATIO_TARGET:g}{TIMES} Databay's time" if aps else "",
                    verdict(None if ratio is None else ratio <= START_RATIO_TARGET) if aps else "",
                )
            )
            a, b = old.get("shutdown_s"), new.get("shutdown_s")
            rows.append(
                Row(
                    ID,
                    label + "shutdown(wait=True)",
                    fmt_time(a) if a is not None else status(sides.get(DATABAY)),
                    fmt_time(b) if b is not None else status(sides.get(BUS)),
                    fmt_ratio(a / b, "less time", "more time") if a and b else "—",
                    f"{LE} 50 ms" if aps else "",
                    verdict(None if b is None else b <= SHUTDOWN_TARGET) if aps else "",
                )
            )
        else:
            a, b = old.get("bytes_per_link"), new.get("bytes_per_link")
            shared = case["nodes"] == "shared"
            rows.append(
                Row(
                    ID,
                    label + f"memory per link ({case['nodes']} nodes)",
                    fmt_bytes(a) if a is not None else status(sides.get(DATABAY)),
                    fmt_bytes(b) if b is not None else status(sides.get(BUS)),
                    fmt_ratio(a / b, "less memory", "more memory") if a and b else "—",
                    f"{LE} 2 KB" if aps and shared else "",
                    verdict(None if b is None else b <= MEMORY_TARGET) if aps and shared else "",
                )
            )
    return rows
