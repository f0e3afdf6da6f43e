"""Scenario 6: many HTTP inlets on one link.

200 ``HttpInlet(url)`` on one link, one outlet, against a local aiohttp server (a separate
process on 127.0.0.1); ``link.transfer()`` in a loop, after one warm-up transfer. Baseline: a
bare aiohttp program doing the same 200 GETs with ``asyncio.gather`` on one ``ClientSession``
(kept open across rounds, default connector) and decoding each JSON body. Figure: time per
transfer (per round of 200 requests).
Target: databay_bus <= 1.2x the bare time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import subprocess
import sys
from collections.abc import Iterator
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
    timed_loop,
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
    """The link on both libraries, and the bare baseline (run in the project's env)."""
    common = {"inlets": _INLETS[mode], "repeats": _REPEATS[mode]}
    return [
        {"id": "bare aiohttp gather", "kind": "bare", "libs": [BUS], **common},
        {"id": "HttpInlets", "kind": "link", "libs": list(LIBS), **common},
    ]


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Time one transfer of N HttpInlets, or one bare round of N requests."""
    if case["kind"] == "bare":
        return _bare(case["url"], case["inlets"], _MIN_TIME[mode])
    try:
        http_inlet = importlib.import_module(f"{lib}.inlets").HttpInlet
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{lib}.inlets.HttpInlet: {exc}") from exc
    outlet = node_classes(lib)["CountOutlet"]()
    inlets = [http_inlet(case["url"]) for _ in range(case["inlets"])]
    link = make_link(lib, inlets, [outlet], 60.0)
    link.on_start()
    try:
        count, seconds = timed_loop(link.transfer, _MIN_TIME[mode], min_count=3, warmup=1)
    finally:
        link.on_shutdown()
    if outlet.count != (count + 1) * case["inlets"]:
        raise AssertionError(f"got {outlet.count} records in {count + 1} transfers")
    return {"s_per_transfer": seconds / count}


def _bare(url: str, requests: int, min_time: float) -> dict[str, Any]:
    import aiohttp

    loop = asyncio.new_event_loop()
    try:
        session = loop.run_until_complete(_session(aiohttp))

        async def fetch() -> Any:
            async with session.get(url) as response:
                return await response.json()

        async def one_round() -> None:
            results = await asyncio.gather(*(fetch() for _ in range(requests)))
            if len(results) != requests:
                raise AssertionError("lost a response")

        count, seconds = timed_loop(
            lambda: loop.run_until_complete(one_round()), min_time, min_count=3, warmup=1
        )
        loop.run_until_complete(session.close())
    finally:
        loop.close()
    return {"s_per_transfer": seconds / count}


async def _session(aiohttp: Any) -> Any:
    return aiohttp.ClientSession()


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """The bare baseline, then the link on both libraries against it."""
    bare_side = results.get("bare aiohttp gather", {}).get(BUS)
    bare = (bare_side or {}).get("s_per_transfer")
    sides = results.get("HttpInlets", {})
    old = sides.get(DATABAY, {}).get("s_per_transfer")
    new = sides.get(BUS, {}).get("s_per_transfer")
    n = _INLETS[mode]
    ratio = new / bare if new and bare else None
    return [
        Row(
            ID,
            f"bare aiohttp gather of {n} GETs: time per round",
            fmt_time(bare) if bare else status(bare_side),
        ),
        Row(
            ID,
            f"{n} HttpInlets on one link: time per transfer",
            fmt_time(old) if old else status(sides.get(DATABAY)),
            fmt_time(new) if new else status(sides.get(BUS)),
            (fmt_ratio(ratio, "the bare time") if ratio else "—")
            + (f"; Databay {old / bare:.3g}{TIMES} bare" if old and bare else ""),
            f"{LE} {TARGET:g}{TIMES} the bare time",
            verdict(None if ratio is None else ratio <= TARGET),
        ),
    ]
