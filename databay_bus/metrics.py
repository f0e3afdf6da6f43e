"""Counters a link keeps about its transfers, for ``planner.metrics()`` and status lines."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LinkMetrics", "OutletMetrics"]


@dataclass
class OutletMetrics:
    """What one outlet of a link has taken and failed."""

    pushed: int = 0
    failures: int = 0


@dataclass
class LinkMetrics:
    """Totals since the link was created; updated once per transfer, read any time."""

    transfers: int = 0
    failures: int = 0
    skipped: int = 0
    records_pulled: int = 0
    records_pushed: int = 0
    last_duration: float | None = None
    last_transfer_at: float | None = None
    outlets: dict[str, OutletMetrics] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_transfer(
        self,
        pulled: int,
        pushed: dict[str, int],
        outlet_failures: dict[str, int],
        duration: float,
        finished_at: float,
        failed: bool,
    ) -> None:
        """Fold one finished transfer into the totals."""
        with self._lock:
            self.transfers += 1
            self.failures += int(failed)
            self.records_pulled += pulled
            self.records_pushed += sum(pushed.values())
            self.last_duration = duration
            self.last_transfer_at = finished_at
            for name in {*pushed, *outlet_failures}:
                outlet = self.outlets.setdefault(name, OutletMetrics())
                outlet.pushed += pushed.get(name, 0)
                outlet.failures += outlet_failures.get(name, 0)

    def add_skipped(self) -> None:
        """Count a tick skipped because the previous transfer was still running."""
        with self._lock:
            self.skipped += 1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot."""
        with self._lock:
            data = {k: v for k, v in vars(self).items() if k not in ("_lock", "outlets")}
            data["outlets"] = {name: asdict(o) for name, o in self.outlets.items()}
        return data
