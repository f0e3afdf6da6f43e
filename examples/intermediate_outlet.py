"""Intermediate outlet: a JSON Lines writer choosing its file per record from metadata.

Shows: a ``MetadataKey`` with a default; files opened lazily and kept open between pushes,
closed in ``on_shutdown``; a lock because one outlet may serve several links at once.
Run: ``python examples/intermediate_outlet.py --transfers 3 --interval 1 --output-dir out``
Prints, after shutdown, each file written and its line count: ``even.jsonl: 4 lines``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from databay_bus import Inlet, Link, MetadataKey, Outlet, Record, Update
from databay_bus.planners import ApsPlanner


class JsonLinesOutlet(Outlet):
    """Appends each payload as one JSON line to ``<folder>/<STREAM>.jsonl``."""

    STREAM = MetadataKey("JsonLinesOutlet.STREAM")

    def __init__(self, folder: Path, default_stream: str = "default") -> None:
        super().__init__()
        self.folder = folder
        self.default_stream = default_stream
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def on_start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_shutdown(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()

    def push(self, records: list[Record], update: Update) -> None:
        with self._lock:
            for record in records:
                stream = str(record.metadata.get(self.STREAM, self.default_stream))
                if stream not in self._files:
                    path = self.folder / f"{stream}.jsonl"
                    self._files[stream] = path.open("a", encoding="utf-8")
                self._files[stream].write(json.dumps(record.payload) + "\n")
            for file in self._files.values():
                file.flush()


class NumbersInlet(Inlet):
    """Two numbers per transfer, labelled even or odd through the outlet's metadata key."""

    def pull(self, update: Update) -> list[Record]:
        numbers = [update.transfer_number * 2, update.transfer_number * 2 + 1]
        return [
            self.new_record({"n": n}, {JsonLinesOutlet.STREAM: "even" if n % 2 == 0 else "odd"})
            for n in numbers
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.output_dir or Path(scratch)
        link = Link(NumbersInlet(), JsonLinesOutlet(folder), args.interval, tags="jsonl")
        planner = ApsPlanner(link)
        planner.start(block=False)
        while planner.running and link.transfer_number + 1 < args.transfers:
            time.sleep(0.01)
        planner.shutdown()
        for path in sorted(folder.glob("*.jsonl")):
            count = len(path.read_text(encoding="utf-8").splitlines())
            print(f"{path.name}: {count} lines", flush=True)


if __name__ == "__main__":
    main()
