"""Scenario 6: many HTTP inlets on one link.

200 ``HttpInlet(url)`` on one link, one outlet, against a local aiohttp server (a separate
process on 127.0.0.1). Baseline: a bare aiohttp program doing the same 200 GETs with
``asyncio.gather`` on one ``ClientSession`` (kept open across rounds, default connector) and
decoding each JSON body. Each library's worker alternates one ``link.transfer()`` with one bare
round, after one warm-up of each, and reports the median of each. Figure: time per transfer
(per round of 200 requests), and its ratio to the bare rounds measured beside it.
Target: databay_bus <= 1.2x the bare time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BUS,
    DATABAY,
    LE,
    LIBS,
    TIMES,
    Row,
    Unavailable,
    fmt_ratio,
    fmt_time,
    make_link,
    node_classes,
    status,
    verdict,
)

__all__ = ["ID", "TITLE", "cases", "measure", "runner_context", "summarize"]

ID = 6
TITLE = "200 HttpInlets on one link vs a bare aiohttp gather"
FRESH_PROCESS = False
TARGET = 1.2
_INLETS = {"full": 200, "quick": 200, "smoke": 10}
_MIN_TIME = {"full": 1.0, "quick": 0.3, "smoke": 0.05}
_REPEATS = {"full": 5, "quick": 2, "smoke": 1}


@contextlib.contextmanager
def runner_context(mode: str) -> Iterator[dict[str, Any]]:
    """Run the local server for the whole scenario; cases get its URL."""
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._http_server"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"benchmark HTTP server did not start: {line!r}")
        yield {"url": f"http://127.0.0.1:{int(line.split()[1])}/item"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def cases(mode: str) -> list[dict[str, Any]]:
    """One case on both libraries: the link, interleaved with the bare baseline."""
    return [
        {
            "id": "HttpInlets",
            "libs": list(LIBS),
            "inlets": _INLETS[mode],
            "repeats": _REPEATS[mode],
        }
    ]


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Alternate one link transfer of N HttpInlets with one bare round of N requests.

    Round by round in one process, so the two figures share this machine's moment: a drift
    in its speed (or in the server's) lands on both, not on whichever ran during it.
    """
    try:
        http_inlet = importlib.import_module(f"{lib}.inlets").HttpInlet
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{lib}.inlets.HttpInlet: {exc}") from exc
    url, count = case["url"], case["inlets"]
    outlet = node_classes(lib)["CountOutlet"]()
    link = make_link(lib, [http_inlet(url) for _ in range(count)], [outlet], 60.0)
    bare_round, close_bare = _bare(url, count)
    link.on_start()
    try:
        link.transfer()
        bare_round()
        times: dict[str, list[float]] = {"bare": [], "link": []}
        clock = time.perf_counter
        deadline = clock() + 2 * _MIN_TIME[mode]
        while clock() < deadline or len(times["link"]) < 3:
            for side, call in (("bare", bare_round), ("link", link.transfer)):
                started = clock()
                call()
                times[side].append(clock() - started)
    finally:
        link.on_shutdown()
        close_bare()
    if outlet.count != (len(times["link"]) + 1) * count:
        raise AssertionError(f"got {outlet.count} records in {len(times['link']) + 1} transfers")
    return {
        "s_per_transfer": statistics.median(times["link"]),
        "bare_s_per_round": statistics.median(times["bare"]),
    }


def _bare(url: str, requests: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """The baseline: a round of ``requests`` GETs gathered on one kept-open ClientSession,
    each JSON body decoded; returns (one round, close)."""
    import aiohttp

    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session(aiohttp))

    async def fetch() -> Any:
        async with session.get(url) as response:
            return await response.json()

    async def one_round() -> None:
        results = await asyncio.gather(*(fetch() for _ in range(requests)))
        if len(results) != requests:
            raise AssertionError("lost a response")

    def close() -> None:
        loop.run_until_complete(session.close())
        loop.close()

    return lambda: loop.run_until_complete(one_round()), close


async def _session(aiohttp: Any) -> Any:
    return aiohttp.ClientSession()


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """The bare baseline, then the link on both libraries, each against its own bare rounds."""
    sides = results.get("HttpInlets", {})
    new_side, old_side = sides.get(BUS, {}), sides.get(DATABAY, {})
    new, bare = new_side.get("s_per_transfer"), new_side.get("bare_s_per_round")
    old, old_bare = old_side.get("s_per_transfer"), old_side.get("bare_s_per_round")
    n = _INLETS[mode]
    ratio = new / bare if new and bare else None
    return [
        Row(
            ID,
            f"bare aiohttp gather of {n} GETs: time per round",
            fmt_time(bare) if bare else status(new_side),
        ),
        Row(
            ID,
            f"{n} HttpInlets on one link: time per transfer",
            fmt_time(old) if old else status(old_side),
            fmt_time(new) if new else status(new_side),
            (fmt_ratio(ratio, "the bare time") if ratio else "—")
            + (f"; Databay {old / old_bare:.3g}{TIMES} bare" if old and old_bare else ""),
            f"{LE} {TARGET:g}{TIMES} the bare time",
            verdict(None if ratio is None else ratio <= TARGET),
        ),
    ]
