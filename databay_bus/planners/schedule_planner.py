"""SchedulePlanner: links scheduled with the ``schedule`` package, one Scheduler per planner."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import schedule

from databay_bus._clock import Clock, SystemClock
from databay_bus._concurrency import WorkerPool
from databay_bus._validation import as_list, coerce_interval, positive_int
from databay_bus.errors import ScheduleIntervalError
from databay_bus.link import Link
from databay_bus.planners._groups import Group, LinkGroups
from databay_bus.planners.base import BasePlanner, _deprecated_catch_exceptions
from databay_bus.schedules import Cron

__all__ = ["ScheduleIntervalError", "SchedulePlanner"]

_LOGGER = logging.getLogger(__name__)
_COUNTED_MISSES = 10_000  # beyond this many missed cron ticks, jump to now without counting


def _naive(moment: datetime) -> datetime:
    """An aware datetime as the naive UTC time the loop compares (``job.next_run``)."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class SchedulePlanner(BasePlanner):
    """Schedules links with a ``schedule.Scheduler`` of its own and a pool of worker threads.

    Args:
        threads: worker threads running transfers.
        refresh_interval: the longest the loop sleeps, in seconds; links may not have a
            shorter interval. The loop wakes exactly when the next transfer is due, so this
            is not the timing resolution.
        links, ignore_exceptions, immediate_transfer, shutdown_at_exit: see BasePlanner.
        catch_exceptions: deprecated spelling of ``ignore_exceptions``.
        clock: where the loop reads the time (tests pass a ``FakeClock``); the system clock
            by default.

    Transfers keep to a grid: the k-th is due at start + k * interval, whatever the time a
    transfer took, so there is no cumulative drift; ticks the loop could not honour are
    logged as missed. Overlapping ticks of one link are skipped with a WARNING. Cron links
    fire at their ``Cron``'s times, looked up by this loop (``schedule`` cannot express
    cron). The loop keeps time in UTC: ``link.job.next_run`` is a naive UTC datetime, and a
    DST change of the host's zone moves no tick.

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
        clock: Clock | None = None,
    ) -> None:
        self._threads = positive_int(threads, "threads", "SchedulePlanner")
        self._clock: Clock = clock or SystemClock()
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
            interval = link.interval if isinstance(link, Link) else None
            if isinstance(interval, timedelta) and interval < self._refresh_interval:
                raise ScheduleIntervalError(
                    f"{self!r}: interval of {link!r} must be greater than or equal to the "
                    f"refresh interval. Link interval: {interval.total_seconds()}s, "
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
        now = self._now()
        for group in self._groups.form(links, self._is_immediate):
            if group.cron is None:
                due: datetime | None = now + timedelta(seconds=group.seconds)
            else:
                due = self._next_cron_tick(group, group.cron, now)
            if due is None:
                _LOGGER.warning("%s: the schedule has ended", self._groups.describe(group))
            else:
                job = self._scheduler.every(group.seconds or 1).seconds.do(  # type: ignore[arg-type]
                    self._groups.dispatch, group
                )
                job.next_run = due
                group.job = job
            job = group.job
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
            self._schedule_many(list(self._links.values()))
        self._loop_thread = threading.Thread(
            target=self._loop, args=(pool,), name="databay_bus-schedule-loop", daemon=True
        )
        self._loop_thread.start()

    def _now(self) -> datetime:
        """The clock's time as a naive UTC datetime (what ``job.next_run`` holds)."""
        return datetime.fromtimestamp(self._clock.time(), timezone.utc).replace(tzinfo=None)

    def _loop(self, pool: WorkerPool) -> None:
        while self._groups.pool is pool:
            now = self._now()
            nearest: datetime | None = None
            for job in list(self._scheduler.jobs):
                if job.next_run is not None and job.next_run <= now:
                    self._tick(job, now)
                if job.next_run is not None and (nearest is None or job.next_run < nearest):
                    nearest = job.next_run
            limit = self.refresh_interval
            if nearest is not None:  # not schedule's idle_seconds: that reads local time
                limit = max(0.0, min((nearest - self._now()).total_seconds(), limit))
            self._wakeup.wait(limit)
            self._wakeup.clear()

    def _next_cron_tick(self, group: Group, cron: Cron, after: datetime) -> datetime | None:
        """Record in ``group.fire`` the cron's first fire time after ``after`` (naive UTC);
        return when its tick is due (fire time plus jitter, naive UTC), or None at the end."""
        fire = cron.next_after(after.replace(tzinfo=timezone.utc))
        group.fire = fire
        return None if fire is None else _naive(fire + timedelta(seconds=cron.delay(fire)))

    def _tick(self, job: schedule.Job, now: datetime) -> None:
        """Dispatch a due group, then move its job to the next grid point after ``now``."""
        assert isinstance(job.job_func, functools.partial) and job.next_run is not None
        group: Group = job.job_func.args[0]
        self._groups.dispatch(group)
        if group.cron is not None:
            self._tick_cron(job, group, group.cron, now)
            return
        interval = timedelta(seconds=group.seconds)
        due, missed = job.next_run + interval, 0
        while due <= now:
            due += interval
            missed += 1
        self._log_missed(group, missed)
        job.last_run = now
        job.next_run = due

    def _tick_cron(self, job: schedule.Job, group: Group, cron: Cron, now: datetime) -> None:
        """Move a cron group's job to its first tick due after ``now``; count those skipped."""
        fire: datetime = group.fire
        due, missed = self._next_cron_tick(group, cron, _naive(fire)), 0
        while due is not None and due <= now:
            missed += 1
            if missed >= _COUNTED_MISSES:  # far behind: skip to now without counting
                due = self._next_cron_tick(group, cron, now)
                break
            due = self._next_cron_tick(group, cron, _naive(group.fire))
        self._log_missed(group, missed)
        job.last_run = now
        if due is None:
            _LOGGER.info("%s: the schedule has ended", self._groups.describe(group))
            self._scheduler.cancel_job(job)
            return
        job.next_run = due

    def _log_missed(self, group: Group, missed: int) -> None:
        if missed:
            _LOGGER.warning(
                "%s: %d transfer(s) missed, the planner fell behind",
                self._groups.describe(group),
                missed,
            )

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
