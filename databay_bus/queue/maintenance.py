"""QueueMaintenance: a planner's background thread that purges its links' queues.

Retention (deleting DELIVERED entries older than ``queue.retention``) runs here, every
``queue.purge_interval`` seconds per queue, on its own daemon thread, so transfers never
wait for it; SqliteQueue purges in short transactions so a large purge does not hold the
write lock for long either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from databay_bus.queue.base import RecordQueue

if TYPE_CHECKING:
    from databay_bus.link import Link

__all__ = ["QueueMaintenance"]

_LOGGER = logging.getLogger(__name__)

_IDLE_WAIT = 5.0  # seconds between looks at the links when no queue needs purging


class QueueMaintenance:
    """Calls ``purge()`` on each distinct queue of ``links()`` every ``purge_interval``.

    Args:
        links: returns the links to look at (read again on every wake-up, so links added
            while running are covered).
    """

    def __init__(
        self,
        links: Callable[[], Sequence[Link]],
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self._links = links
        self._alive = alive
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last: dict[int, float] = {}

    def start(self) -> None:
        """Start the daemon thread (once; never after :meth:`stop`)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._loop, name="databay_bus-queue-maintenance", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the thread; waits for a purge in progress unless ``timeout`` passes first.

        Safe before :meth:`start` (which then does nothing) and from the thread itself.
        """
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is None or thread is threading.current_thread() or timeout == 0:
            return
        if thread.is_alive():  # a start() interrupted by a signal may not have begun it
            thread.join(timeout)

    def queues(self) -> list[RecordQueue]:
        """The distinct queues of the links."""
        found: dict[int, RecordQueue] = {}
        for link in self._links():
            queue = link.queue
            if isinstance(queue, RecordQueue):
                found.setdefault(id(queue), queue)
        return list(found.values())

    def run_once(self, now: float | None = None) -> float:
        """Purge each queue whose interval has passed; return seconds until the next is due."""
        now = time.monotonic() if now is None else now
        wait = _IDLE_WAIT
        for queue in self.queues():
            interval = queue.purge_interval
            if interval is None or queue.retention is None:
                continue
            last = self._last.setdefault(id(queue), now)
            if now - last >= interval:
                self._last[id(queue)] = now
                try:
                    purged = queue.purge()
                except Exception as exc:
                    _LOGGER.error("%r: purging delivered records failed", queue, exc_info=exc)
                else:
                    if purged:
                        _LOGGER.debug("%r: purged %d delivered entries", queue, purged)
                last = now
            wait = min(wait, max(0.0, last + interval - now))
        return wait

    def _loop(self) -> None:
        # ``alive`` ends the loop too, should the owner stop without calling stop().
        while not self._stop.is_set() and self._alive():
            wait = self.run_once()
            self._stop.wait(max(wait, 0.01))
