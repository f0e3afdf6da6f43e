"""Progress of a long push lane (a first transfer, a backlog drain) at INFO, every few seconds.

A transfer that pushes many batches to one outlet reports, at most every :data:`EVERY` seconds,
how many records that outlet took so far and how many still wait (in this transfer, and in the
link's queue). Short transfers never log anything: the first line comes ``EVERY`` seconds in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from databay_bus._clock import Clock, SystemClock

if TYPE_CHECKING:
    from databay_bus.delivery.base import Lane

__all__ = ["CLOCK", "EVERY", "LaneProgress"]

_LOGGER = logging.getLogger("databay_bus.link")

#: Seconds between two progress lines of one lane.
EVERY = 5.0
#: Where progress reads the time (tests put a FakeClock here).
CLOCK: Clock = SystemClock()


class LaneProgress:
    """Counts one lane's delivered records and logs progress when ``EVERY`` s have passed."""

    __slots__ = ("_delivered", "_next", "_outlet", "_update", "_waiting")

    def __init__(self, update: Any, outlet: str, waiting: Callable[[], int | None]) -> None:
        self._update = update
        self._outlet = outlet
        self._waiting = waiting
        self._delivered = 0
        self._next = CLOCK.monotonic() + EVERY

    def batch_done(self, delivered: int, lane: Lane) -> None:
        """After a push of ``lane``: ``delivered`` records were taken."""
        self._delivered += delivered
        now = CLOCK.monotonic()
        if now < self._next or lane.done >= len(lane.batches):
            return
        self._next = now + EVERY
        remaining = sum(len(batch) for batch in lane.batches[lane.done :])
        backlog = self._waiting()
        _LOGGER.info(
            "%s: outlet %s: %d records delivered so far, %d more in this transfer%s",
            self._update,
            self._outlet,
            self._delivered,
            remaining,
            "" if backlog is None else f", {backlog} waiting in the queue in all",
            extra={"outlet": self._outlet, "delivered": self._delivered, "remaining": remaining},
        )
