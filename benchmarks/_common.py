"""Helpers shared by the scenarios: library loading, timing loops, test nodes, formatting.

Runs under both environments (the project's and Databay's venv), so it imports neither library
at module level and uses the standard library only.
"""

from __future__ import annotations

import importlib
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

__all__ = [
    "BUS",
    "DATABAY",
    "GE",
    "LE",
    "LIBS",
    "MODES",
    "TIMES",
    "Row",
    "Unavailable",
    "fmt_bytes",
    "fmt_count",
    "fmt_ratio",
    "fmt_time",
    "library",
    "make_link",
    "median_metrics",
    "node_classes",
    "percentile",
    "planners",
    "status",
    "timed_loop",
    "verdict",
]

#: the multiplication and greater-or-equal signs used in the table
TIMES = "\u00d7"
GE = "\u2265"
LE = "\u2264"
DATABAY = "databay"
BUS = "databay_bus"
LIBS = (DATABAY, BUS)
#: full: the real run; quick: about a minute in all; smoke: a few seconds, for the test suite.
MODES = ("full", "quick", "smoke")


class Unavailable(Exception):
    """The code a scenario measures does not exist (yet) in this environment."""


@dataclass
class Row:
    """One line of the results table."""

    scenario: int
    case: str
    databay: str = "—"
    bus: str = "—"
    ratio: str = "—"
    target: str = ""
    verdict: str = ""


def library(lib: str) -> ModuleType:
    """Import ``databay`` or ``databay_bus``."""
    return importlib.import_module(lib)


def planners(lib: str) -> ModuleType:
    """Import the library's ``planners`` package."""
    return importlib.import_module(f"{lib}.planners")


def timed_loop(
    call: Callable[[], object], min_time: float, min_count: int = 3, warmup: int = 1
) -> tuple[int, float]:
    """Call ``call`` until ``min_time`` seconds and ``min_count`` calls passed.

    Returns (calls, seconds) of the timed part, after ``warmup`` untimed calls.
    """
    for _ in range(warmup):
        call()
    count = 0
    clock = time.perf_counter
    start = clock()
    deadline = start + min_time
    while True:
        call()
        count += 1
        now = clock()
        if now >= deadline and count >= min_count:
            return count, now - start


_node_cache: dict[str, dict[str, type]] = {}


def node_classes(lib: str) -> dict[str, type]:
    """Inlet and outlet classes for the benchmarks, subclassing ``lib``'s Inlet and Outlet.

    * ``ListInlet(payload)``: returns ``payload`` (a list, copied: one record per item; else
      one record).
    * ``AsyncListInlet(payload)``: the same from ``async def pull``.
    * ``StampInlet(stamps)``: appends ``time.time()`` to ``stamps``, returns one record.
    * ``CountOutlet()`` / ``AsyncCountOutlet()``: count the records pushed.
    """
    if lib in _node_cache:
        return _node_cache[lib]
    mod = library(lib)

    class ListInlet(mod.Inlet):  # type: ignore[misc, name-defined]
        def __init__(self, payload: Any) -> None:
            super().__init__()
            self.payload = payload

        def pull(self, update: Any) -> Any:
            # A new list each time: Databay replaces the items of the returned list by Records
            # in place, which would turn later pulls into pre-made Records.
            return list(self.payload) if isinstance(self.payload, list) else self.payload

    class AsyncListInlet(mod.Inlet):  # type: ignore[misc, name-defined]
        def __init__(self, payload: Any) -> None:
            super().__init__()
            self.payload = payload

        async def pull(self, update: Any) -> Any:
            return list(self.payload) if isinstance(self.payload, list) else self.payload

    class StampInlet(mod.Inlet):  # type: ignore[misc, name-defined]
        def __init__(self, stamps: list[float]) -> None:
            super().__init__()
            self.stamps = stamps

        def pull(self, update: Any) -> Any:
            self.stamps.append(time.time())
            return 1

    class CountOutlet(mod.Outlet):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def push(self, records: list[Any], update: Any) -> None:
            self.count += len(records)

    class AsyncCountOutlet(mod.Outlet):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        async def push(self, records: list[Any], update: Any) -> None:
            self.count += len(records)

    classes: dict[str, type] = {
        "ListInlet": ListInlet,
        "AsyncListInlet": AsyncListInlet,
        "StampInlet": StampInlet,
        "CountOutlet": CountOutlet,
        "AsyncCountOutlet": AsyncCountOutlet,
    }
    _node_cache[lib] = classes
    return classes


def make_link(lib: str, inlets: Any, outlets: Any, interval: float, **options: Any) -> Any:
    """Build a Link of ``lib`` the way both libraries accept it (interval as a timedelta)."""
    return library(lib).Link(inlets, outlets, timedelta(seconds=interval), **options)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def median_metrics(samples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric key over the samples; other values from the first sample."""
    samples = list(samples)
    merged: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples if key in s]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            merged[key] = statistics.median(values)
        else:
            merged[key] = values[0]
    merged["repeats"] = len(samples)
    return merged


def fmt_time(seconds: float) -> str:
    """Seconds as µs, ms or s with three significant digits."""
    if seconds != seconds:  # NaN
        return "n/a"
    magnitude = abs(seconds)
    if magnitude < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if magnitude < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_count(value: float, unit: str) -> str:
    """A rate or count with thousands separators."""
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def fmt_bytes(value: float) -> str:
    """Bytes as B or KB (1 KB = 1024 B)."""
    if value < 1024:
        return f"{value:.0f} B"
    return f"{value / 1024:.2f} KB"


def fmt_ratio(value: float, better: str = "", worse: str = "") -> str:
    """A ratio as ``12.3x`` (multiplication sign) followed by ``better``; when ``worse`` is
    given and the ratio is below 1, its inverse followed by ``worse`` instead."""
    if value != value or value <= 0:
        return "n/a"
    if worse and value < 1:
        value, better = 1 / value, worse
    return f"{value:.3g}{TIMES} {better}".rstrip()


def verdict(met: bool | None) -> str:
    """'met', 'missed', or 'n/a' when the figures needed are missing."""
    if met is None:
        return "n/a"
    return "met" if met else "**missed**"


def status(side: dict[str, Any] | None) -> str:
    """What to show in a cell that has no figure: not run, not available yet, or error."""
    if side is None:
        return "not run"
    if "unavailable" in side:
        return "not available yet"
    if "error" in side:
        return "error"
    return "—"
