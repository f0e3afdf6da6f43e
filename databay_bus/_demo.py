"""``databay-bus demo``: a real pipeline from a generated pipeline file, ending by itself.

A small aiohttp server on 127.0.0.1 (random port) serves weather readings as JSON; the
pipeline pulls it with HttpInlet, stores every record in a SqliteQueue, and delivers them to
a CSV file and to stdout (PrintOutlet). The pipeline file, CSV and queue stay in the
directory, so ``databay-bus validate`` and ``databay-bus queue stats`` can be tried on them.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import tempfile
import threading
from pathlib import Path
from typing import Any

from databay_bus._signals import stop_event_on_signals

__all__ = ["PIPELINE_TEMPLATE", "DemoServer", "run_demo"]

PIPELINE_TEMPLATE = """\
# Written by `databay-bus demo`. The demo starts the HTTP source itself; the rest is an
# ordinary pipeline file (see docs/config.md).
log_level = "WARNING"

[planner]
kind = "aps"
threads = 4

[queue]
path = "${{PIPELINE_DIR}}/demo-queue.sqlite3"
retention = "1d"

[[links]]
tags = ["weather"]
interval = {interval}
inlets = [{{ type = "http", url = "{url}", name = "station-feed" }}]
outlets = [
    {{ type = "csv", default_filepath = "${{PIPELINE_DIR}}/readings.csv", name = "csv" }},
    {{ type = "print", name = "print", only_payload = true }},
]
retry = {{ max_attempts = 3, initial_delay = "0.2s" }}
"""


class DemoServer:
    """A JSON HTTP source on 127.0.0.1 in a thread of its own: ``GET /readings``."""

    def __init__(self) -> None:
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="demo-http")
        self._runner: Any = None
        self._counter = itertools.count(1)
        self.url = ""

    def start(self) -> str:
        """Start serving; returns the URL of the readings."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.url = future.result(timeout=10)
        return self.url

    async def _serve(self) -> str:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/readings", self._readings)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/readings"

    async def _readings(self, request: Any) -> Any:
        from aiohttp import web

        self.requests += 1
        n = next(self._counter)
        readings = [
            {
                "station": station,
                "seq": n,
                "temperature_c": round(12 + offset + 3 * math.sin(n / 2), 2),
            }
            for station, offset in (("north", 0.0), ("south", 4.5))
        ]
        return web.json_response(readings)

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def run_demo(directory: str | None, transfers: int, interval: float) -> int:
    """Run the demo pipeline for ``transfers`` transfers and print a summary; exit code."""
    from databay_bus.config import load
    from databay_bus.errors import MissingDependencyError

    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise MissingDependencyError("aiohttp", "http", "The demo's HTTP source") from None
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="databay_bus-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    server = DemoServer()
    url = server.start()
    try:
        pipeline_file = folder / "pipeline.toml"
        pipeline_file.write_text(
            PIPELINE_TEMPLATE.format(url=url, interval=interval), encoding="utf-8"
        )
        pipeline = load(pipeline_file)
        pipeline.configure_logging()
        print(f"demo: pulling {url} every {interval:g}s for {transfers} transfers")
        print(f"demo: pipeline file {pipeline_file}")
        stop = threading.Event()
        with stop_event_on_signals(stop):
            reason = pipeline.run(transfers=transfers, stop=stop)
        metrics = (pipeline.final_metrics or {"links": [{}]})["links"][0]
    finally:
        server.stop()
    _print_summary(folder, pipeline_file, url, server.requests, metrics, reason)
    return 0 if reason in ("transfers", "stopped") else 1


def _print_summary(
    folder: Path, pipeline_file: Path, url: str, requests: int, metrics: dict[str, Any], why: str
) -> None:
    from databay_bus.queue import SqliteQueue

    csv_path = folder / "readings.csv"
    queue_path = folder / "demo-queue.sqlite3"
    outlets = metrics.get("outlets", {})
    with SqliteQueue(queue_path) as queue:
        stats = queue.stats()
    key = metrics.get("queue", {}).get("key", "weather")
    delivered = sum(s.delivered for s in stats.outlets if s.link == key)
    lines = [
        "",
        f"demo {'finished' if why == 'transfers' else 'stopped'}: {metrics['transfers']} "
        f"transfers, {metrics['records_pulled']} records pulled from {url} "
        f"({requests} HTTP requests served)",
        f"  csv     {outlets.get('csv', {}).get('pushed', 0):>4} records -> {csv_path}",
        f"  print   {outlets.get('print', {}).get('pushed', 0):>4} records -> stdout",
        f"  queue   {queue_path}: {stats.records} records stored, {delivered} deliveries "
        f"delivered, {stats.pending(key)} pending, {stats.dead(key)} dead",
        f"files in {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}",
        f"next: databay-bus validate {pipeline_file}",
        f"      databay-bus queue stats --queue {queue_path}",
    ]
    print("\n".join(lines))
