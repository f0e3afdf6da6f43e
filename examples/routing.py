"""Routing: two inlets, three outlets, and a mapping deciding which outlet gets each record.

Shows: ``MetadataRouter`` sending each record only to the outlets its ``kind`` names —
prices to a CSV file, headlines to a JSON-lines archive *and* an alerts outlet (fan-out),
anything else to the archive (the default) — with every outlet named by ``name=``.
Run: ``python examples/routing.py --transfers 3 --interval 1 --output-dir out``
Prints one ``alert: ...`` line per headline, then a summary per outlet
(``prices.csv: 6 rows``, ``archive.jsonl: 6 lines``, ``alerts: 3`` for 3 transfers) and
``every record reached exactly the outlets its route names``.
"""

from __future__ import annotations

import argparse
import csv
import json
import threading
import time
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.outlets import CsvOutlet, FileOutlet
from databay_bus.planners import ApsPlanner
from databay_bus.routing import MetadataRouter


class PriceInlet(Inlet):
    """Two quotes per transfer, marked ``kind='price'``."""

    def pull(self, update: Update) -> list[Record]:
        n = update.transfer_number
        return [
            self.new_record({"symbol": s, "price": 100 + n + i}, {"kind": "price"})
            for i, s in enumerate(("ACME", "INITECH"))
        ]


class NewsInlet(Inlet):
    """One headline and one heartbeat per transfer; heartbeats have no route of their own."""

    def pull(self, update: Update) -> list[Record]:
        n = update.transfer_number
        return [
            self.new_record({"headline": f"story {n}"}, {"kind": "headline"}),
            self.new_record({"heartbeat": n}, {"kind": "heartbeat"}),
        ]


class AlertOutlet(Outlet):
    """Prints what it receives and remembers it."""

    def __init__(self) -> None:
        super().__init__(name="alerts")
        self.received: list[Any] = []
        self._lock = threading.Lock()

    def push(self, records: list[Record], update: Update) -> None:
        with self._lock:
            for record in records:
                self.received.append(record.payload)
                print(f"alert: {json.dumps(record.payload)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--output-dir", type=Path, default=Path("routing-output"))
    args = parser.parse_args(argv)
    csv_path = args.output_dir / "prices.csv"
    archive_path = args.output_dir / "archive.jsonl"
    for path in (csv_path, archive_path):
        path.unlink(missing_ok=True)

    alerts = AlertOutlet()
    link = Link(
        [PriceInlet(name="prices"), NewsInlet(name="news")],
        [
            CsvOutlet(csv_path, name="prices_csv"),
            FileOutlet(archive_path, name="archive", processors=_as_json_lines),
            alerts,
        ],
        interval=args.interval,
        tags="market",
        router=MetadataRouter(
            "kind", {"price": "prices_csv", "headline": ["archive", "alerts"]}, default="archive"
        ),
    )
    planner = ApsPlanner(link)
    planner.start(block=False)
    while planner.running and link.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()

    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    archived = [json.loads(line) for line in archive_path.read_text("utf-8").splitlines()]
    transfers = link.transfer_number + 1
    print(f"prices.csv: {len(rows)} rows")
    print(f"archive.jsonl: {len(archived)} lines")
    print(f"alerts: {len(alerts.received)}")
    exact = (
        len(rows) == 2 * transfers
        and all("symbol" in row for row in rows)
        and sorted(p.get("headline", "") for p in archived if "headline" in p)
        == sorted(p["headline"] for p in alerts.received)
        and sum("heartbeat" in p for p in archived) == transfers
        and all("headline" in p for p in alerts.received)
    )
    print(
        "every record reached exactly the outlets its route names" if exact else "ROUTING MISMATCH"
    )


def _as_json_lines(records: list[Record]) -> list[Record]:
    """FileOutlet writes str(payload); make that a JSON line."""
    return [Record(json.dumps(r.payload), r.metadata) for r in records]


if __name__ == "__main__":
    main()
