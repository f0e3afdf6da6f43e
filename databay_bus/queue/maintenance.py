"""QueueMaintenance: a planner's background thread that purges its links' queues.

Retention (deleting DELIVERED entries older than ``queue.retention``) runs here, every
``queue.purge_interval`` seconds per queue, on its own daemon thread, so transfers never
wait for it; SqliteQueue purges in short transactions so a large purge does not hold the
write lock for long either. The same thread records the planner's status
(:mod:`databay_bus.status`) in each queue that keeps it, every ``STATUS_INTERVAL`` seconds,
for ``databay-bus status`` to read beside the running process; less often when building and
encoding it would take more than 5 % of a core (100,000 links: ~1 s of CPU, so every ~20 s),
and the record says so in its ``interval``, by which readers judge whether it is stale.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from databay_bus.queue.base import RecordQueue
from databay_bus.status import STATUS_INTERVAL

if TYPE_CHECKING:
    from databay_bus.link import Link
    from databay_bus.status import PipelineStatus

__all__ = ["QueueMaintenance"]

_LOGGER = logging.getLogger(__name__)

_IDLE_WAIT = 5.0  # seconds between looks at the links when no queue needs purging
_STATUS_SHARE = 0.05  # of one core, at most, for the status records


class QueueMaintenance:
    """Calls ``purge()`` on each distinct queue of ``links()`` every ``purge_interval``.

    Args:
        links: returns the links to look at (read again on every wake-up, so links added
            while running are covered).
        alive: False once the owner stopped (ends the thread).
        status: returns the owner's status to record in the queues (None: record none).
        cpu_time: the calling thread's CPU seconds (tests pass a fake), to bound the
            status records' share of a core.
        queues: returns the links' distinct queues, when the owner keeps track of them
            (a planner does); else every wake-up finds them by walking ``links()``.
    """

    def __init__(
        self,
        links: Callable[[], Sequence[Link]],
        alive: Callable[[], bool] = lambda: True,
        status: Callable[[], PipelineStatus] | None = None,
        cpu_time: Callable[[], float] = time.thread_time,
        queues: Callable[[], Sequence[RecordQueue]] | None = None,
    ) -> None:
        self._links = links
        self._queues = queues
        self._alive = alive
        self._status = status
        self._status_at: float | None = None
        self._status_every = STATUS_INTERVAL
        self._status_cost = 0.0  # CPU seconds the last status took to build and encode
        self._cpu_time = cpu_time
        self._owner = f"{os.getpid()}-{id(self):x}"
        self._status_failed: set[int] = set()
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
        if self._queues is not None:
            return list(self._queues())
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
        queues = self.queues()  # without an owner's index, a walk over the links (100,000: ~20 ms)
        for queue in queues:
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
        if self._status is not None:
            if self._status_at is None or now - self._status_at >= self._status_every:
                self._status_at = now
                self.record_status(queues=queues)
            wait = min(wait, max(0.0, self._status_at + self._status_every - now))
        return wait

    def record_status(
        self, final: bool = False, queues: Sequence[RecordQueue] | None = None
    ) -> None:
        """Record the owner's status in each queue that keeps one (errors are logged; the
        ``final`` record, as the owner stops, may find a queue already closed: DEBUG).
        ``queues``: the links' queues when the caller has just listed them."""
        if self._status is None:
            return
        queues = [
            q
            for q in (self.queues() if queues is None else queues)
            if type(q).record_status is not RecordQueue.record_status
        ]
        if not queues:
            return
        try:
            text = self._status_text(self._status)
        except Exception as exc:
            if final:
                _LOGGER.debug("the pipeline's last status failed: %s", exc)
            else:
                _LOGGER.warning("recording the pipeline's status failed", exc_info=exc)
            return
        for queue in queues:
            try:
                queue.record_status(self._owner, text)
            except Exception as exc:
                if final:
                    _LOGGER.debug("%r: recording the last status failed: %s", queue, exc)
                elif id(queue) not in self._status_failed:  # once per queue, not every 5 s
                    self._status_failed.add(id(queue))
                    _LOGGER.warning("%r: recording the status failed: %s", queue, exc)
            else:
                self._status_failed.discard(id(queue))

    def _status_text(self, make: Callable[[], PipelineStatus]) -> str:
        """The owner's status as JSON, its ``interval`` stretched to keep the records under
        ``_STATUS_SHARE`` of a core (encoding takes about as long as building)."""
        began = self._cpu_time()
        status = make()
        cost = max(2 * (self._cpu_time() - began), self._status_cost)
        self._status_every = max(STATUS_INTERVAL, status.interval, cost / _STATUS_SHARE)
        if self._status_every != status.interval:
            status = replace(status, interval=self._status_every)
        text = status.to_json()
        self._status_cost = self._cpu_time() - began
        return text

    def _loop(self) -> None:
        # ``alive`` ends the loop too, should the owner stop without calling stop().
        while not self._stop.is_set() and self._alive():
            wait = self.run_once()
            self._stop.wait(max(wait, 0.01))
        self.record_status(final=True)  # the last word: the planner is stopping
