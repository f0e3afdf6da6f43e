"""Clocks: time is passed in, never patched, so time-dependent tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """What databay_bus reads time from."""

    def time(self) -> float:
        """Seconds since the epoch (for timestamps that are stored, e.g. retry times)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never goes backwards (for durations)."""


class SystemClock:
    """The real clock: ``time.time`` and ``time.monotonic``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
