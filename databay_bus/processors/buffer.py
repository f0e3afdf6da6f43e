"""Buffer: a processor that holds records back until a condition releases them together.

Semantics follow Databay's ``Buffer`` (see docs/buffer.md), with three deliberate fixes:

* the time threshold counts from when the first record was stored (Databay started the clock
  at the first evaluation, which in AND mode could be much later);
* a controller that raises is logged and counts as "do not release" (Databay skipped it,
  which in AND mode meant "release");
* calls are serialised by a lock, so links transferring concurrently never lose records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from databay_bus._clock import Clock, SystemClock
from databay_bus._validation import (
    as_bool,
    as_callables,
    optional_callable,
    optional_integer,
    optional_seconds,
)
from databay_bus.records import Record

__all__ = ["Buffer", "Controller"]

_LOGGER = logging.getLogger(__name__)

#: A release condition: receives every stored record, returns True to release them.
Controller = Callable[[list[Record]], bool]


class Buffer:
    """Stores the records it is given and returns them all at once when a controller says so.

    Use one Buffer per link (as a link processor) or per outlet (as an outlet processor); a
    Buffer shared by several of them mixes their records.

    Args:
        count_threshold: release when *more than* this many records are stored (Databay's
            rule: 3 releases on the 4th record). None disables the count controller.
        time_threshold: release when more than this many seconds (or a ``timedelta``) have
            passed since the oldest stored record arrived. None disables it.
        custom_controllers: callables ``list[Record] -> bool``, evaluated first, in order.
        on_reset: called with no arguments after every :meth:`reset` (and so every release).
        conjugate_controllers: False (default): release when *any* controller says so;
            True: only when *all* do. With no controller at all only :attr:`flush` releases.
        clock: where time is read from (tests pass a ``FakeClock``).

    Attributes:
        records: the stored records (read it only under :attr:`lock` when others may write).
        flush: set True to release everything on the next call, controllers or not.
        time_start: monotonic time the oldest stored record arrived, or None when empty.
    """

    def __init__(
        self,
        count_threshold: int | None = None,
        time_threshold: float | timedelta | None = None,
        custom_controllers: Controller | Sequence[Controller] | None = None,
        on_reset: Callable[[], object] | None = None,
        conjugate_controllers: bool = False,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.count_threshold = optional_integer(count_threshold, "count_threshold", "Buffer", 0)
        self.time_threshold = optional_seconds(time_threshold, "time_threshold", "Buffer")
        self.custom_controllers: list[Controller] = as_callables(
            custom_controllers, "custom_controllers", "Buffer"
        )
        self.on_reset = optional_callable(on_reset, "on_reset", "Buffer")
        self.conjugate_controllers = as_bool(
            conjugate_controllers, "conjugate_controllers", "Buffer"
        )
        self.records: list[Record] = []
        self.time_start: float | None = None
        self.flush = False
        self.lock = threading.RLock()
        self._clock: Clock = clock if clock is not None else SystemClock()

    def get_controllers(self) -> list[Controller]:
        """The controllers in evaluation order: custom ones, then count, then time."""
        controllers = list(self.custom_controllers)
        if self.count_threshold is not None:
            controllers.append(self._count_controller)
        if self.time_threshold is not None:
            controllers.append(self._time_controller)
        return controllers

    def __call__(self, records: list[Record]) -> list[Record]:
        """Store ``records``; return every stored record if they are due, else ``[]``."""
        with self.lock:
            if records and not self.records:
                self.time_start = self._clock.monotonic()
            self.records.extend(records)
            if not self.flush and not self._due():
                return []
            released = self.records
            self.records = []
            self.reset()
            return released

    def reset(self) -> None:
        """Drop the stored records, stop the time controller, clear ``flush``, call on_reset."""
        with self.lock:
            self.records = []
            self.time_start = None
            self.flush = False
            if self.on_reset is not None:
                self.on_reset()

    def _due(self) -> bool:
        controllers = self.get_controllers()
        if not controllers:
            return False
        for controller in controllers:
            try:
                passed = bool(controller(self.records))
            except Exception as exc:
                _LOGGER.exception(  # ends with Databay's wording, which users grep for
                    "Buffer controller %r failed; counted as 'do not release'. "
                    'Exception while running controller: "%s"',
                    controller,
                    exc,
                )
                passed = False
            if passed and not self.conjugate_controllers:
                return True
            if not passed and self.conjugate_controllers:
                return False
        return self.conjugate_controllers

    def _count_controller(self, records: list[Record]) -> bool:
        return self.count_threshold is not None and len(records) > self.count_threshold

    def _time_controller(self, records: list[Record]) -> bool:
        if self.time_threshold is None or self.time_start is None:
            return False
        return self._clock.monotonic() - self.time_start > self.time_threshold

    def __repr__(self) -> str:
        return (
            f"Buffer(count_threshold={self.count_threshold}, time_threshold={self.time_threshold}, "
            f"custom_controllers={len(self.custom_controllers)}, "
            f"conjugate_controllers={self.conjugate_controllers}, stored={len(self.records)})"
        )
