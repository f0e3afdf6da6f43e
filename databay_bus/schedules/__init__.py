"""Schedules: when a link's ticks are due (see docs/schedules.md).

``Schedule`` is the protocol (``next_after(moment)`` and ``delay(fire)``); ``Cron`` and
``IntervalSchedule`` implement it. ``Link.schedule`` gives any link's schedule.
"""

from __future__ import annotations

from databay_bus.schedules.base import EPOCH, Schedule
from databay_bus.schedules.cron import ALIASES, Cron
from databay_bus.schedules.interval import IntervalSchedule

__all__ = ["ALIASES", "EPOCH", "Cron", "IntervalSchedule", "Schedule"]
