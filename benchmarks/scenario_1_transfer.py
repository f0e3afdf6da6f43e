"""Scenario 1: the cost of one transfer.

One inlet returning one record, one outlet, ``link.transfer()`` called in a loop; once with
plain (sync) nodes and once with ``async def`` nodes. Figure: time per transfer.
Target: databay_bus takes at least 15x less time per transfer than Databay, in both variants.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import (
    BUS,
    DATABAY,
    GE,
    LIBS,
    TIMES,
    Row,
    fmt_ratio,
    fmt_time,
    make_link,
    node_classes,
    status,
    timed_loop,
    verdict,
)

__all__ = ["ID", "TITLE", "cases", "measure", "summarize"]

ID = 1
TITLE = "one record, one outlet, transfer() loop"
FRESH_PROCESS = False
TARGET = 15.0
_MIN_TIME = {"full": 1.0, "quick": 0.3, "smoke": 0.02}
_REPEATS = {"full": 7, "quick": 3, "smoke": 1}


def cases(mode: str) -> list[dict[str, Any]]:
    """The two variants: sync and async nodes."""
    return [
        {"id": f"{kind} nodes", "nodes": kind, "libs": list(LIBS), "repeats": _REPEATS[mode]}
        for kind in ("sync", "async")
    ]


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Time ``link.transfer()`` in a loop."""
    nodes = node_classes(lib)
    if case["nodes"] == "sync":
        inlet, outlet = nodes["ListInlet"]({"n": 1}), nodes["CountOutlet"]()
    else:
        inlet, outlet = nodes["AsyncListInlet"]({"n": 1}), nodes["AsyncCountOutlet"]()
    link = make_link(lib, [inlet], [outlet], 60.0)
    link.on_start()
    try:
        count, seconds = timed_loop(link.transfer, _MIN_TIME[mode], warmup=20)
    finally:
        link.on_shutdown()
    if outlet.count != count + 20:
        raise AssertionError(f"outlet got {outlet.count} records for {count + 20} transfers")
    return {"s_per_transfer": seconds / count, "transfers": count}


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """One row per variant: time per transfer on both sides and Databay/databay_bus."""
    rows = []
    for case in cases(mode):
        sides = results.get(case["id"], {})
        old = sides.get(DATABAY, {}).get("s_per_transfer")
        new = sides.get(BUS, {}).get("s_per_transfer")
        ratio = old / new if old and new else None
        rows.append(
            Row(
                ID,
                f"{case['id']}: time per transfer",
                fmt_time(old) if old else status(sides.get(DATABAY)),
                fmt_time(new) if new else status(sides.get(BUS)),
                fmt_ratio(ratio, "less time", "more time") if ratio else "—",
                f"{GE} {TARGET:g}{TIMES} less time than Databay",
                verdict(None if ratio is None else ratio >= TARGET),
            )
        )
    return rows
