"""IntervalSchedule: fire every ``interval`` on a grid anchored at a fixed instant."""

from __future__ import annotations

from datetime import datetime, timedelta

from databay_bus.schedules.base import EPOCH, as_utc

__all__ = ["IntervalSchedule"]

_MICROSECOND = timedelta(microseconds=1)


class IntervalSchedule:
    """Fire times ``anchor + k * interval`` (k an integer), computed in exact microseconds.

    Args:
        interval: a positive timedelta.
        anchor: an aware datetime on the grid; the Unix epoch by default, so that processes
            started at different times agree on the ticks (the built-in planners anchor an
            interval link's grid when they schedule it instead, as Databay does).
    """

    __slots__ = ("anchor", "interval")

    def __init__(self, interval: timedelta, anchor: datetime = EPOCH) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"IntervalSchedule: interval must be positive, got {interval!r}")
        self.interval = interval
        self.anchor = as_utc(anchor, "IntervalSchedule")

    def next_after(self, moment: datetime) -> datetime:
        """The first grid point strictly after ``moment``, in UTC."""
        elapsed = as_utc(moment, self) - self.anchor
        steps = elapsed // self.interval + 1  # timedelta // timedelta: exact, floors
        return self.anchor + self.interval * steps

    def delay(self, fire: datetime) -> float:
        """No jitter: 0.0."""
        return 0.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalSchedule):
            return NotImplemented
        return (self.interval, self.anchor) == (other.interval, other.anchor)

    def __hash__(self) -> int:
        return hash((self.interval, self.anchor))

    def __repr__(self) -> str:
        return f"IntervalSchedule({self.interval!r}, anchor={self.anchor.isoformat()})"
