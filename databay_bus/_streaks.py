"""FailureStreaks: a failure that repeats is logged as one streak, not as one traceback per try.

A pipeline left running overnight meets the same fault many times (a source down, a node that
could not start). Each streak is logged as:

* its first failure, at ERROR with the traceback;
* then at most one WARNING line per ``every`` seconds while it lasts (how many failures so
  far, the latest error's type and message, no traceback); a failure of another exception
  type logs its traceback again;
* its end, at WARNING: ``'<what> back after N failures (failing for S s)'``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from databay_bus._clock import Clock, SystemClock

__all__ = ["FailureStreaks", "Repeats"]


@dataclass
class _Streak:
    failures: int
    started: float
    logged: float
    error_type: type[BaseException]


class FailureStreaks:
    """Per-key failure streaks, logged sparingly on ``logger``.

    Args:
        logger: where the lines go.
        every: seconds between two lines of one streak after its first.
        clock: time source (tests pass a FakeClock).
    """

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, clock: Clock | None = None
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._streaks: dict[Hashable, _Streak] = {}

    def failed(
        self,
        key: Hashable,
        what: str,
        error: BaseException,
        extra: dict[str, Any] | None = None,
        log_first: bool = True,
    ) -> bool:
        """Record a failure of ``key`` (described as ``what``).

        Returns True when this failure is one to show in full (the first of a streak, or of a
        new exception type); with ``log_first=False`` the caller logs those itself.
        """
        now = self._clock.monotonic()
        with self._lock:
            streak = self._streaks.get(key)
            if streak is None:
                self._streaks[key] = _Streak(1, now, now, type(error))
                first, count, since = True, 1, 0.0
            else:
                streak.failures += 1
                count, since = streak.failures, now - streak.started
                first = type(error) is not streak.error_type
                if not first and now - streak.logged < self._every:
                    return False
                streak.logged, streak.error_type = now, type(error)
        if first and not log_first:
            return True
        if first:
            self._logger.error(
                "%s failed: %s: %s", what, type(error).__name__, error, exc_info=error, extra=extra
            )
        else:
            self._logger.warning(
                "%s still failing: %d failures in %.0f s, latest %s: %s",
                what,
                count,
                since,
                type(error).__name__,
                error,
                extra=extra,
            )
        return first

    def succeeded(self, key: Hashable, what: str, extra: dict[str, Any] | None = None) -> int:
        """Record a success of ``key``; log the end of its streak if it had one. Returns the
        number of failures the streak had (0 if none)."""
        if not self._streaks:  # the common case: nothing failing, no lock
            return 0
        with self._lock:
            streak = self._streaks.pop(key, None)
        if streak is None:
            return 0
        self._logger.warning(
            "%s back after %d failure%s (failing for %.0f s)",
            what,
            streak.failures,
            "" if streak.failures == 1 else "s",
            self._clock.monotonic() - streak.started,
            extra=extra,
        )
        return streak.failures

    def failing(self, key: Hashable) -> int:
        """How many failures in a row ``key`` has now (0 when it is not failing)."""
        streak = self._streaks.get(key)
        return 0 if streak is None else streak.failures

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s streak without logging (its object is gone)."""
        with self._lock:
            self._streaks.pop(key, None)


class Repeats:
    """A notice that repeats (a tick skipped because a transfer hangs): logged the first
    time, then at most once per ``every`` seconds with how many were not shown, until
    :meth:`clear` says the condition is over.

    Args:
        logger: where the lines go.
        every: seconds between two lines for one key.
        clock: time source (tests pass a FakeClock).
    """

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, clock: Clock | None = None
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._seen: dict[Hashable, tuple[float | None, int]] = {}  # key -> (logged at, hidden)

    def note(self, key: Hashable, level: int, message: str, *args: object) -> None:
        """Log ``message % args`` for ``key`` unless it was logged less than ``every`` s ago."""
        now = self._clock.monotonic()
        with self._lock:
            last, hidden = self._seen.get(key, (None, 0))
            if last is not None and now - last < self._every:
                self._seen[key] = (last, hidden + 1)
                return
            self._seen[key] = (now, 0)
        if hidden and last is not None:
            message += " (%d more like it in the last %.0f s)"
            args = (*args, hidden, now - last)
        self._logger.log(level, message, *args)

    def clear(self, key: Hashable) -> None:
        """The condition of ``key`` is over: its next notice is logged at once."""
        if self._seen:  # the common case: nothing repeating, no lock
            with self._lock:
                self._seen.pop(key, None)
