"""Small inlets, outlets and helpers that pipeline files in the config and CLI tests name.

Importable as ``pipeline_nodes`` (tests/config is on ``sys.path`` under pytest; subprocess
tests put it on ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from databay_bus import Inlet, Outlet, Record, Update
from databay_bus.config import factory

__all__ = [
    "LINK",
    "CountingInlet",
    "FlakyFileOutlet",
    "JsonLinesOutlet",
    "ListOutlet",
    "add_one",
    "double_processor",
    "is_big",
    "make_scaler",
    "split_in_pairs",
    "unmarked_scaler",
]

#: The smallest valid link of a pipeline file, for tests to add keys to.
LINK = """
[[links]]
tags = ["t"]
interval = 1
inlets = ["pipeline_nodes.CountingInlet"]
outlets = [{type = "pipeline_nodes.ListOutlet", name = "x"}]
"""


class CountingInlet(Inlet):
    """Produces ``per_pull`` records ``{'n': i, 'source': name}`` per pull, numbered from 0."""

    def __init__(self, per_pull: int = 1, kind: str = "count", name: str | None = None) -> None:
        super().__init__(metadata={"kind": kind}, name=name)
        self.per_pull = per_pull
        self._next = 0
        self._lock = threading.Lock()

    def pull(self, update: Update) -> list[dict[str, Any]]:
        with self._lock:
            first, self._next = self._next, self._next + self.per_pull
        return [{"n": first + i, "source": self.name} for i in range(self.per_pull)]


class ListOutlet(Outlet):
    """Keeps every pushed record in ``records`` (for in-process tests)."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def push(self, records: list[Record], update: Update) -> None:
        with self._lock:
            self.records.extend(records)


class JsonLinesOutlet(Outlet):
    """Appends one JSON line per record (payload and id) to ``path``, flushed at once."""

    def __init__(self, path: str, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = Path(path)

    def push(self, records: list[Record], update: Update) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps({"payload": record.payload, "id": record.id}) + "\n")
            file.flush()
            os.fsync(file.fileno())


class FlakyFileOutlet(JsonLinesOutlet):
    """A JsonLinesOutlet that raises while the file ``broken_flag`` exists."""

    def __init__(self, path: str, broken_flag: str, name: str | None = None) -> None:
        super().__init__(path, name=name)
        self.broken_flag = Path(broken_flag)

    def push(self, records: list[Record], update: Update) -> None:
        if self.broken_flag.exists():
            raise ConnectionError(f"{self.name} is down ({self.broken_flag} exists)")
        super().push(records, update)


def double_processor(records: list[Record]) -> list[Record]:
    """Every record twice."""
    return [r for record in records for r in (record, record)]


def add_one(records: list[Record]) -> list[Record]:
    """Adds 1 to every payload's ``n``."""
    return [Record({**r.payload, "n": r.payload["n"] + 1}, r.metadata) for r in records]


@factory
def make_scaler(factor: int) -> Any:
    """A processor factory: multiplies every ``n`` by ``factor``."""

    def scale(records: list[Record]) -> list[Record]:
        return [Record({**r.payload, "n": r.payload["n"] * factor}, r.metadata) for r in records]

    return scale


def split_in_pairs(batches: list[list[Record]]) -> list[list[Record]]:
    """A grouper: batches of at most two records."""
    return [batch[i : i + 2] for batch in batches for i in range(0, len(batch), 2)]


def is_big(record: Record) -> bool:
    """A predicate for PredicateRouter rules: ``n >= 2``."""
    return bool(record.payload["n"] >= 2)


def unmarked_scaler(factor: int) -> Any:
    """Like make_scaler, but not marked as a factory: a pipeline file may not call it."""
    return make_scaler(factor)
