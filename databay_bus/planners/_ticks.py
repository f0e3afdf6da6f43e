"""Which scheduled tick a planner's transfer serves: the tick's identity across processes.

A tick is named by its **scheduled fire time** (epoch seconds, UTC), computed from the link's
schedule, never from the moment a host happens to run it: processes whose schedulers fire at
different phases of an interval (or with a jitter) name the same tick alike, so a queue
shared by processes lets exactly one of them pull it (``RecordQueue.claim_tick``).

The interface with schedules is one question: *the latest fire time at or before now*.

* A link with a ``schedule`` (an object with ``next_after(moment)``, see
  ``databay_bus.schedules``) answers it by walking ``next_after`` from a little before now;
  a schedule may offer ``last_at_or_before(moment)`` to answer it directly.
* Otherwise the link's ``interval`` on the grid anchored at the Unix epoch:
  ``floor(now / interval) * interval`` — every process shares that grid.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["current_tick"]

_LOOKBACK_STEPS = 40  # widenings of the look-back window before giving up on a schedule


def current_tick(link: Any, now: float) -> float | None:
    """The scheduled fire time (epoch seconds) of ``link``'s latest tick at or before ``now``.

    None when it cannot be told (a schedule with no fire time before ``now``).
    """
    schedule = getattr(link, "schedule", None)
    if schedule is not None and callable(getattr(schedule, "next_after", None)):
        return _from_schedule(schedule, now)
    seconds = link.interval.total_seconds()
    return float(math.floor(now / seconds) * seconds)


def _from_schedule(schedule: Any, now: float) -> float | None:
    moment = datetime.fromtimestamp(now, timezone.utc)
    direct = getattr(schedule, "last_at_or_before", None)
    if callable(direct):
        fire = direct(moment)
        return None if fire is None else fire.timestamp()
    interval = getattr(schedule, "interval", None)
    anchor = getattr(schedule, "anchor", None)
    if isinstance(interval, timedelta) and isinstance(anchor, datetime):  # a fixed grid
        steps = (moment - anchor) // interval
        return (anchor + interval * steps).timestamp()
    # Walk back until some fire time lies at or before now, then forward to the latest one.
    window = timedelta(seconds=60)
    for _ in range(_LOOKBACK_STEPS):
        fire = schedule.next_after(moment - window)
        if fire is not None and fire <= moment:
            while True:
                following = schedule.next_after(fire)
                if following is None or following > moment:
                    return float(fire.timestamp())
                fire = following
        window *= 2
    return None
