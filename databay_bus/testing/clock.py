"""FakeClock: a clock tests move by hand."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A :class:`~databay_bus._clock.Clock` that stands still until :meth:`advance` is called.

    Args:
        start: the initial value of :meth:`time` (seconds since the epoch).
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError(f"FakeClock cannot go backwards, got advance({seconds!r})")
        with self._lock:
            self._now += seconds
