"""Inlets and outlets for the queue tests."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from databay_bus import Inlet, Outlet, Record, Update

__all__ = ["CountingInlet", "FlakyOutlet", "ListOutlet", "ValuesInlet"]


class CountingInlet(Inlet):
    """Pulls ``per_pull`` consecutive integers each time (0, 1, 2, ...)."""

    def __init__(self, per_pull: int = 3, name: str | None = None) -> None:
        super().__init__(name=name)
        self.per_pull = per_pull
        self.next = 0
        self.pulls = 0

    def pull(self, update: Update) -> list[int]:
        self.pulls += 1
        values = list(range(self.next, self.next + self.per_pull))
        self.next += self.per_pull
        return values


class ValuesInlet(Inlet):
    """Pulls the next list from ``batches`` (then nothing)."""

    def __init__(self, *batches: list[Any], name: str | None = None) -> None:
        super().__init__(name=name)
        self.batches = list(batches)

    def pull(self, update: Update) -> list[Any]:
        return self.batches.pop(0) if self.batches else []


class ListOutlet(Outlet):
    """Records every pushed record; fails while ``fail`` is true (or ``fail()`` returns true)."""

    def __init__(
        self, name: str | None = None, fail: bool | Callable[[], bool] = False, **kw: Any
    ) -> None:
        super().__init__(name=name, **kw)
        self.fail = fail
        self.records: list[Record] = []
        self.batches: list[list[Record]] = []
        self.attempts = 0
        self._lock = threading.Lock()

    def push(self, records: list[Record], update: Update) -> None:
        with self._lock:
            self.attempts += 1
            failing = self.fail() if callable(self.fail) else self.fail
            if failing:
                raise ConnectionError(f"{self.name} is down")
            self.records.extend(records)
            self.batches.append(list(records))

    @property
    def payloads(self) -> list[Any]:
        return [record.payload for record in self.records]


class FlakyOutlet(ListOutlet):
    """Fails at random with probability ``rate`` (seeded)."""

    def __init__(self, rate: float, seed: int, name: str | None = None) -> None:
        rng = random.Random(seed)
        super().__init__(name=name, fail=lambda: rng.random() < rate)
