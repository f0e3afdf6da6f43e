"""The schedule protocol: when is a link's next tick due.

A *schedule* answers one question, ``next_after(moment)``: the first scheduled fire time
strictly after ``moment``, an aware UTC datetime (or None once the schedule has ended). The
fire time is the tick's identity: every process evaluating the same schedule gets the same
answer, so a tick can be claimed across processes by ``(link, fire time)``.

``delay(fire)`` is how long after its scheduled time a tick actually starts (a jitter,
derived from the fire time alone, so it is the same in every process); 0 when none.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

from databay_bus.errors import ArgumentTypeError, ConfigurationError, describe

__all__ = ["EPOCH", "Schedule", "as_utc"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@runtime_checkable
class Schedule(Protocol):
    """When a link fires: ``Cron`` and ``IntervalSchedule`` implement it."""

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware), as an aware UTC datetime;
        None when the schedule has ended (its ``end`` bound is passed)."""

    def delay(self, fire: datetime) -> float:
        """Seconds after ``fire`` (a value ``next_after`` returned) the tick starts: its
        jitter, the same in every process; 0.0 without jitter."""


def as_utc(moment: datetime, owner: object) -> datetime:
    """``moment`` converted to UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(moment, datetime):
        raise ArgumentTypeError(f"{owner}: needs a datetime, got {describe(moment)}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigurationError(
            f"{owner}: a time-zone-aware datetime is needed, got naive {moment!r}"
        )
    return moment.astimezone(timezone.utc)
