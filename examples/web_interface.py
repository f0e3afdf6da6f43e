"""The web interface beside a running planner: pages, JSON API, health and metrics.

What it shows: two queued links, one of whose outlets (the "warehouse") refuses every third
order, so dead letters pile up (the queue isolates the refused order: the rest of its batch
is delivered, only that order is dead-lettered). A ``WebInterface`` serves the planner on its
own thread, with an administrator who logs in on the pages and a viewer token for the JSON
API and ``/metrics``. At the end the example reads its own API, as a script or a scraper would.

Run::

    python examples/web_interface.py                       # open the printed URL; Ctrl+C stops
    python examples/web_interface.py --transfers 3 --interval 0.2 --port 0

Log in as ``admin`` / ``demo``. Prints the URL, then (when bounded) what the API says, e.g.::

    serving http://127.0.0.1:8080 as DEMO (log in as admin / demo)
    readyz: ready
    orders: ok, 3 transfers, 9 pulled, 3 dead
    sensors: ok, 3 transfers, 6 pulled, 0 dead
    metrics: databay_bus_transfers_total{link="orders"} 3.0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner
from databay_bus.queue import RetryPolicy, SqliteQueue
from databay_bus.web import WebInterface, hash_password, hash_token

__all__ = ["build", "main"]

VIEWER_TOKEN = "example-viewer-token"  # a real one comes from `databay-bus hash-password --token`


class OrdersInlet(Inlet):
    """Three orders per pull."""

    def __init__(self) -> None:
        super().__init__(name="shop")
        self.next = 1

    def pull(self, update: Update) -> list[dict[str, Any]]:
        orders = [{"order": n, "total": round(9.5 * n, 2)} for n in range(self.next, self.next + 3)]
        self.next += 3
        return orders


class SensorInlet(Inlet):
    """Two readings per pull."""

    def __init__(self) -> None:
        super().__init__(name="thermometer")
        self.n = 0

    def pull(self, update: Update) -> list[dict[str, float]]:
        self.n += 2
        return [{"celsius": 20 + self.n / 10}, {"celsius": 20.05 + self.n / 10}]


class Warehouse(Outlet):
    """Takes orders, but refuses every third one (a push holding it fails)."""

    def __init__(self) -> None:
        super().__init__(name="warehouse")
        self.received: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            if record.payload["order"] % 3 == 0:
                raise ValueError(f"warehouse API refused order {record.payload['order']}")
        self.received.extend(r.payload for r in records)


class Archive(Outlet):
    """Keeps everything."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.received: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.received.extend(r.payload for r in records)


def build(
    queue_path: Path,
    interval: float,
    port: int = 8080,
    alias: str = "DEMO",
    pipeline_file: Path | None = None,
) -> tuple[ApsPlanner, WebInterface, SqliteQueue]:
    """The demo planner, its queue, and a web interface for it (not started)."""
    queue = SqliteQueue(queue_path)
    no_retry = RetryPolicy(max_attempts=1)  # a refused order dies at once: dead letters to see
    orders = Link(
        [OrdersInlet()],
        [Warehouse(), Archive("archive")],
        interval,
        tags=["orders"],
        queue=queue,
        retry=no_retry,
    )
    sensors = Link([SensorInlet()], [Archive("dashboard")], interval, tags=["sensors"], queue=queue)
    planner = ApsPlanner([orders, sensors], ignore_exceptions=True)
    users = {
        "admin": {"role": "administrator", "password_hash": hash_password("demo")},
        "scraper": {"role": "viewer", "tokens": [hash_token(VIEWER_TOKEN)]},
    }
    web = WebInterface(planner, port=port, alias=alias, users=users, pipeline_file=pipeline_file)
    return planner, web, queue


def _api(web: WebInterface, path: str) -> Any:
    request = urllib.request.Request(web.url + path)
    request.add_header("Authorization", f"Bearer {VIEWER_TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return json.loads(body) if path.startswith("/api/") else body


def report(web: WebInterface) -> None:
    """Print what the API says: readiness, each link, one metric."""
    request = urllib.request.Request(web.url + "/readyz")
    with urllib.request.urlopen(request, timeout=10) as response:
        print("readyz:", json.load(response)["status"])
    for link in _api(web, "/api/overview")["links"]:
        print(
            f"{link['id']}: {link['state']}, {link['transfers']} transfers, "
            f"{link['records_pulled']} pulled, {link['dead']} dead"
        )
    metrics = _api(web, "/metrics").splitlines()
    print("metrics:", next(m for m in metrics if m.startswith("databay_bus_transfers_total")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between transfers")
    parser.add_argument("--transfers", type=int, help="stop after N transfers of each link")
    parser.add_argument("--duration", type=float, help="stop after S seconds")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--queue", type=Path, help="the queue file (default: a temp file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        planner, web, queue = build(
            args.queue or Path(tmp, "queue.sqlite3"), args.interval, args.port
        )
        done = threading.Event()
        if args.transfers is not None:
            target = args.transfers

            def enough(event: Any) -> None:
                if all(link.metrics.transfers >= target for link in planner.links):
                    done.set()

            planner.add_observer(enough)
        with web:
            print(f"serving {web.url} as DEMO (log in as admin / demo)", flush=True)
            planner.start(block=False)
            try:
                bounded = args.transfers is not None or args.duration is not None
                done.wait(
                    args.duration if args.duration is not None else None if not bounded else 120
                )
                if bounded:
                    planner.pause()  # no transfers while we read: the numbers hold still
                    report(web)
            except KeyboardInterrupt:
                pass
            finally:
                planner.shutdown()
        queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
