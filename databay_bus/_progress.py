"""Progress of a long push lane (a first transfer, a backlog drain) at INFO, every few seconds.

A transfer that pushes many batches to one outlet reports, at most every :data:`EVERY` seconds,
how many records that outlet took so far, at what rate, and how many still wait (in this
transfer, and in the link's queue). Short transfers never log anything: the first line comes
``EVERY`` seconds in. A lane that drains a queue's backlog chunk after chunk (a queued link's
``drain_budget``) reports first after :data:`DRAIN_AFTER` seconds (a backlog of a million
records may drain in 3 s), and ends with one line saying how much it drained and why it
stopped (:func:`drain_ended`), at INFO once the drain took ``DRAIN_AFTER`` seconds or more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from databay_bus._clock import Clock, SystemClock

if TYPE_CHECKING:
    from databay_bus.delivery.base import Lane

__all__ = ["CLOCK", "DRAIN_AFTER", "EVERY", "LaneProgress", "drain_ended"]

_LOGGER = logging.getLogger("databay_bus.link")

#: Seconds between two progress lines of one lane.
EVERY = 5.0
#: A drain's first progress line comes after this many seconds, and a drain that took at least
#: this long ends with an INFO line (shorter: DEBUG): a backlog drained in 3 s is seen, and a
#: link that drains a few chunks every tick is not noisy.
DRAIN_AFTER = 1.0
#: Where progress reads the time (tests put a FakeClock here).
CLOCK: Clock = SystemClock()


class LaneProgress:
    """Counts one lane's delivered records and logs progress when ``EVERY`` s have passed.

    ``grows``: the delivery may append batches to the lane (a backlog drain), so what is left
    in this transfer is not known; the line gives the queue's count only, and the first line
    comes after ``DRAIN_AFTER`` seconds.
    """

    __slots__ = ("_delivered", "_grows", "_next", "_outlet", "_started", "_update", "_waiting")

    def __init__(
        self,
        update: Any,
        outlet: str,
        waiting: Callable[[], int | None],
        grows: bool = False,
    ) -> None:
        self._update = update
        self._outlet = outlet
        self._waiting = waiting
        self._grows = grows
        self._delivered = 0
        self._started = CLOCK.monotonic()
        self._next = self._started + (DRAIN_AFTER if grows else EVERY)

    def batch_done(self, delivered: int, lane: Lane) -> None:
        """After a push of ``lane`` (and its settle): ``delivered`` records were taken."""
        self._delivered += delivered
        now = CLOCK.monotonic()
        if now < self._next or lane.done >= len(lane.batches):
            return
        self._next = now + EVERY
        rate = self._delivered / max(now - self._started, 1e-9)
        backlog = self._waiting()
        queued = "" if backlog is None else f"{backlog} waiting in the queue in all"
        if self._grows:
            remaining = None
            rest = ", draining the backlog" + (f": {queued}" if queued else "")
        else:
            remaining = sum(len(batch) for batch in lane.batches[lane.done :])
            rest = f", {remaining} more in this transfer" + (f", {queued}" if queued else "")
        _LOGGER.info(
            "%s: outlet %s: %d records delivered so far (%.0f/s)%s",
            self._update,
            self._outlet,
            self._delivered,
            rate,
            rest,
            extra={
                "outlet": self._outlet,
                "delivered": self._delivered,
                "remaining": remaining,
                "waiting": backlog,
            },
        )


def drain_ended(
    update: Any,
    outlet: str,
    delivered: int,
    seconds: float,
    chunks: int,
    reason: str,
    waiting: Callable[[], int | None],
) -> None:
    """Log the end of a lane that drained ``chunks`` chunks of a backlog (see module doc);
    ``waiting`` is asked only when the line is logged (it may count the queue)."""
    level = logging.INFO if seconds >= DRAIN_AFTER else logging.DEBUG
    if not _LOGGER.isEnabledFor(level):
        return
    backlog = waiting()
    rate = delivered / max(seconds, 1e-3)
    _LOGGER.log(
        level,
        "%s: outlet %s: backlog drain ended (%s): %d records delivered in %.1f s (%.0f/s, "
        "%d chunks)%s",
        update,
        outlet,
        reason,
        delivered,
        seconds,
        rate,
        chunks,
        "" if backlog is None else f", {backlog} waiting in the queue in all",
        extra={"outlet": outlet, "delivered": delivered, "waiting": backlog, "reason": reason},
    )
