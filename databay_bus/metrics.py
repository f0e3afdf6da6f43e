"""Counters a link keeps about its transfers, for ``planner.metrics()`` and status lines."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LinkMetrics", "OutletMetrics"]


# One lock for every link's counters: each is held for a microsecond once per transfer, and a
# lock per link would cost more memory than contention ever could (10,000-link planners).
_LOCK = threading.Lock()


@dataclass(slots=True)
class OutletMetrics:
    """What one outlet of a link has taken and failed."""

    pushed: int = 0
    failures: int = 0


@dataclass(slots=True)
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
        outlets = self.outlets
        with _LOCK:
            self.transfers += 1
            if failed:
                self.failures += 1
            self.records_pulled += pulled
            self.last_duration = duration
            self.last_transfer_at = finished_at
            for name, count in pushed.items():
                self.records_pushed += count
                outlet = outlets.get(name)  # _outlet's steps, without its call per outlet
                if outlet is None:
                    outlet = outlets[name] = OutletMetrics()
                outlet.pushed += count
            for name, count in outlet_failures.items():
                self._outlet(name).failures += count

    def _outlet(self, name: str) -> OutletMetrics:
        outlet = self.outlets.get(name)
        if outlet is None:
            outlet = self.outlets[name] = OutletMetrics()
        return outlet

    def add_skipped(self) -> None:
        """Count a tick skipped because the previous transfer was still running."""
        with _LOCK:
            self.skipped += 1

    def counts(self) -> tuple[int, int, int, int, int, float | None, dict[str, tuple[int, int]]]:
        """transfers, failures, skipped, records pulled and pushed, last transfer's end and
        (pushed, failures) per outlet, read together: a status of 100,000 links reads this
        instead of building :meth:`as_dict`'s dicts."""
        with _LOCK:
            return (
                self.transfers,
                self.failures,
                self.skipped,
                self.records_pulled,
                self.records_pushed,
                self.last_transfer_at,
                {name: (o.pushed, o.failures) for name, o in self.outlets.items()},
            )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot."""
        with _LOCK:
            data = {k: getattr(self, k) for k in self.__slots__ if k != "outlets"}
            data["outlets"] = {name: asdict(o) for name, o in self.outlets.items()}
        return data
