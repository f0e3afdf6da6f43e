"""SchedulePlanner: links scheduled with the ``schedule`` package, one Scheduler per planner."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

import schedule

from databay_bus._concurrency import WorkerPool
from databay_bus._validation import as_list, coerce_interval
from databay_bus.errors import ScheduleIntervalError
from databay_bus.link import Link
from databay_bus.planners._groups import Group, LinkGroups
from databay_bus.planners.base import BasePlanner, _deprecated_catch_exceptions

__all__ = ["ScheduleIntervalError", "SchedulePlanner"]

_LOGGER = logging.getLogger(__name__)


class SchedulePlanner(BasePlanner):
    """Schedules links with a ``schedule.Scheduler`` of its own and a pool of worker threads.

    Args:
        threads: worker threads running transfers.
        refresh_interval: the longest the loop sleeps, in seconds; links may not have a
            shorter interval. The loop wakes exactly when the next transfer is due, so this
            is not the timing resolution.
        links, ignore_exceptions, immediate_transfer, shutdown_at_exit: see BasePlanner.
        catch_exceptions: deprecated spelling of ``ignore_exceptions``.

    Transfers keep to a grid: the k-th is due at start + k * interval, whatever the time a
    transfer took, so there is no cumulative drift; ticks the loop could not honour are
    logged as missed. Overlapping ticks of one link are skipped with a WARNING.

    Raises:
        ScheduleIntervalError: a link's interval is shorter than ``refresh_interval``.
    """

    _blocking_start = True  # start() waits until shutdown, as Databay's SchedulePlanner does

    def __init__(
        self,
        links: Link | Sequence[Link] | None = None,
        threads: int = 30,
        refresh_interval: float = 1.0,
        ignore_exceptions: bool = False,
        catch_exceptions: bool | None = None,
        immediate_transfer: bool = True,
        shutdown_at_exit: bool = False,
    ) -> None:
        self._threads = threads
        self._refresh_interval = coerce_interval(refresh_interval, "SchedulePlanner")
        self._scheduler = schedule.Scheduler()
        self._wakeup = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._groups = LinkGroups(self._run_transfer)
        super().__init__(
            links,
            ignore_exceptions=_deprecated_catch_exceptions(catch_exceptions, ignore_exceptions),
            immediate_transfer=immediate_transfer,
            shutdown_at_exit=shutdown_at_exit,
        )

    @property
    def refresh_interval(self) -> float:
        """The longest time, in seconds, the scheduling loop sleeps."""
        return self._refresh_interval.total_seconds()

    @property
    def threads(self) -> int:
        """Number of worker threads."""
        return self._threads

    def add_links(self, links: Link | Sequence[Link]) -> None:
        for link in as_list(links):
            if isinstance(link, Link) and link.interval < self._refresh_interval:
                raise ScheduleIntervalError(
                    f"{self!r}: interval of {link!r} must be greater than or equal to the "
                    f"refresh interval. Link interval: {link.interval.total_seconds()}s, "
                    f"Refresh interval: {self.refresh_interval}s"
                )
        super().add_links(links)

    def _schedule(self, link: Link) -> None:
        self._schedule_many([link])

    def _schedule_many(self, links: list[Link]) -> None:
        """One ``schedule`` job per group of ``links`` (see ``planners/_groups.py``), on a
        grid anchored now; the immediate groups' first transfers are dispatched at once."""
        if self._groups.pool is None or not links:
            return
        now = datetime.now()
        for group in self._groups.form(links, self._is_immediate):
            job = self._scheduler.every(group.seconds).seconds.do(  # type: ignore[arg-type]
                self._groups.dispatch, group
            )
            job.next_run = now + timedelta(seconds=group.seconds)
            group.job = job
            for link in group.links.values():
                link.set_job(job)
            if group.immediate:
                self._groups.dispatch(group)
        self._wakeup.set()

    def _unschedule(self, link: Link) -> None:
        link.set_job(None)
        emptied = self._groups.remove(link)
        if emptied is not None and emptied.job is not None:
            self._scheduler.cancel_job(emptied.job)

    def _immediate_transfers(self, links: list[Link]) -> None:
        """The first run of an immediate link is dispatched at start time instead."""

    def _start_planner(self) -> None:
        with self._links_lock:
            self._groups.pool = pool = WorkerPool(self._threads, name="databay_bus-schedule")
            self._wakeup.clear()
            self._schedule_many(self._links)
        self._loop_thread = threading.Thread(
            target=self._loop, args=(pool,), name="databay_bus-schedule-loop", daemon=True
        )
        self._loop_thread.start()

    def _loop(self, pool: WorkerPool) -> None:
        while self._groups.pool is pool:
            now = datetime.now()
            for job in list(self._scheduler.jobs):
                if job.next_run is not None and job.next_run <= now:
                    self._tick(job, now)
            idle = self._scheduler.idle_seconds
            limit = self.refresh_interval
            self._wakeup.wait(limit if idle is None else max(0.0, min(idle, limit)))
            self._wakeup.clear()

    def _tick(self, job: schedule.Job, now: datetime) -> None:
        """Dispatch a due group, then move its job to the next grid point after ``now``."""
        assert isinstance(job.job_func, functools.partial) and job.next_run is not None
        group: Group = job.job_func.args[0]
        self._groups.dispatch(group)
        interval = timedelta(seconds=group.seconds)
        due, missed = job.next_run + interval, 0
        while due <= now:
            due += interval
            missed += 1
        if missed:
            _LOGGER.warning(
                "%s: %d transfer(s) missed, the planner fell behind",
                self._groups.describe(group),
                missed,
            )
        job.last_run = now
        job.next_run = due

    def _shutdown_planner(self, wait: bool = True) -> None:
        with self._links_lock:
            pool = self._groups.close()
            self._scheduler.clear()  # one clear, not a list removal per job
        self._wakeup.set()
        loop, current = self._loop_thread, threading.current_thread()
        # is_alive(): not a thread whose start() a signal interrupted
        if loop is not None and loop is not current and loop.is_alive():
            loop.join()
        self._loop_thread = None
        if pool is not None:
            pool.shutdown(wait=wait)

    def __repr__(self) -> str:
        return f"SchedulePlanner(threads:{self._threads}, refresh_interval:{self.refresh_interval})"
