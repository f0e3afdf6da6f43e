"""ApsPlanner: links scheduled by APScheduler 3.x, one scheduler per planner.

Each group of links (``databay_bus.planners._groups``) is one APScheduler job on one interval
grid. The job only dispatches: it runs inline in the scheduler's thread and hands every link of
its group to the planner's worker pool. APScheduler's per-job costs (adding a job, checking its
callable, looking for due jobs) are then paid per group, not per link.

A group of cron links runs on a :class:`ScheduleTrigger`, an APScheduler trigger that asks the
group's ``Cron`` (our evaluator, DST-correct; not APScheduler's ``CronTrigger``) for each next
fire time.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from databay_bus._concurrency import WorkerPool
from databay_bus._validation import optional_mapping, positive_int
from databay_bus.link import Link
from databay_bus.planners._groups import LinkGroups
from databay_bus.planners.base import BasePlanner, _deprecated_catch_exceptions
from databay_bus.schedules import Schedule

__all__ = ["APSPlanner", "ApsPlanner", "ScheduleTrigger"]

_LOGGER = logging.getLogger(__name__)
_JOB_NAME = "databay_bus transfers"


class _InlineExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs a job in the scheduler's own thread; for the dispatch jobs, which never block.

    Events are reported as APScheduler's own executors report them (``run_job`` makes the
    executed / error / missed events, which are then dispatched to the listeners). Inline
    runs never overlap, so no instance count is kept.
    """

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        assert self._scheduler is not None, "This executor has not been started yet"
        self._do_submit_job(job, run_times)

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        try:
            events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
        except BaseException:
            self._logger.exception("Error running job %s", job.id)
            return
        for event in events:
            self._scheduler._dispatch_event(event)


class ScheduleTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler 3 trigger firing at a :class:`~databay_bus.schedules.Schedule`'s times.

    A run time is the scheduled fire time plus the schedule's ``delay`` (its jitter). The
    fire times behind the last run times handed out are remembered, so the next one is
    looked up from the scheduled time, not from the jittered one.
    """

    __slots__ = ("_fires", "schedule")

    _REMEMBERED = 64

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self._fires: dict[datetime, datetime] = {}

    def first_run_time(self, now: datetime) -> datetime | None:
        """The first run time after ``now``; None if the schedule has ended."""
        return self._run_after(now)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            return self._run_after(now)
        return self._run_after(self._fires.get(previous_fire_time, previous_fire_time))

    def _run_after(self, moment: datetime) -> datetime | None:
        fire = self.schedule.next_after(moment)
        if fire is None:
            return None
        run = fire + timedelta(seconds=self.schedule.delay(fire))
        if run != fire:
            if len(self._fires) >= self._REMEMBERED:
                del self._fires[next(iter(self._fires))]  # the oldest
            self._fires[run] = fire
        return run

    def __str__(self) -> str:
        return f"schedule[{self.schedule}]"

    def __repr__(self) -> str:
        return f"<ScheduleTrigger ({self.schedule!r})>"


class ApsPlanner(BasePlanner):
    """Schedules links with an APScheduler 3.x ``BackgroundScheduler`` of its own (UTC).

    Args:
        threads: worker threads running transfers; every transfer runs on one of them.
        executors_override: APScheduler executors merged over ``{'default': <inline>}``.
            The ``'default'`` executor runs the dispatch jobs (one per group of links, see
            below), not the transfers: those always run on the ``threads`` workers.
        job_defaults_override: merged over ``{'coalesce': False, 'max_instances': threads}``;
            the settings of the dispatch jobs.
        links, ignore_exceptions, immediate_transfer, shutdown_at_exit: see BasePlanner.
        catch_exceptions: deprecated spelling of ``ignore_exceptions``.

    Links scheduled together (at ``start()``, or in one ``add_links`` call while running)
    with the same interval and immediate flag share one APScheduler job on one grid anchored
    when they were scheduled (cron links with an equal ``Cron``: one job on a
    :class:`ScheduleTrigger`); ``link.job`` is that shared job, so pausing or removing it
    affects the whole group. A tick of a link whose previous transfer is still queued or
    running is skipped with a WARNING and counted; a queued transfer whose link is removed,
    or whose planner stops, is dropped. Missed ticks are logged. A new scheduler is made at
    every ``start()``, so a stopped planner can start again.
    """

    _blocking_start = True  # start() waits until shutdown, as Databay's ApsPlanner does

    def __init__(
        self,
        links: Link | Sequence[Link] | None = None,
        threads: int = 30,
        executors_override: dict[str, Any] | None = None,
        job_defaults_override: dict[str, Any] | None = None,
        ignore_exceptions: bool = False,
        catch_exceptions: bool | None = None,
        immediate_transfer: bool = True,
        shutdown_at_exit: bool = False,
    ) -> None:
        self._threads = positive_int(threads, "threads", "ApsPlanner")
        self._executors_override = dict(
            optional_mapping(executors_override, "executors_override", "ApsPlanner") or {}
        )
        self._job_defaults_override = dict(
            optional_mapping(job_defaults_override, "job_defaults_override", "ApsPlanner") or {}
        )
        self._scheduler: BackgroundScheduler | None = None
        self._groups = LinkGroups(self._run_transfer)
        super().__init__(
            links,
            ignore_exceptions=_deprecated_catch_exceptions(catch_exceptions, ignore_exceptions),
            immediate_transfer=immediate_transfer,
            shutdown_at_exit=shutdown_at_exit,
        )

    @property
    def threads(self) -> int:
        """Number of worker threads."""
        return self._threads

    def _new_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            executors={"default": _InlineExecutor(), **self._executors_override},
            job_defaults={
                "coalesce": False,
                "max_instances": self._threads,
                **self._job_defaults_override,
            },
            timezone=timezone.utc,
        )
        scheduler.add_listener(self._on_job_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def _on_job_event(self, event: JobEvent) -> None:
        group = self._groups.get(event.job_id)
        links = self._groups.describe(group) if group is not None else f"job {event.job_id}"
        if event.code == EVENT_JOB_MISSED:
            _LOGGER.warning("%s: transfer due at %s was missed", links, event.scheduled_run_time)
        else:
            _LOGGER.warning("%s: transfer skipped, too many running at once", links)

    # -- scheduling -------------------------------------------------------------------------

    def _schedule(self, link: Link) -> None:
        self._schedule_many([link])

    def _schedule_many(self, links: list[Link]) -> None:
        if self._scheduler is not None and links:
            self._add_groups(self._scheduler, links, datetime.now(timezone.utc))

    def _add_groups(self, scheduler: BackgroundScheduler, links: list[Link], now: datetime) -> None:
        """Add one job per group of ``links``, on grids anchored at ``now``; dispatch the
        immediate groups' first transfers at once."""
        for group in self._groups.form(links, self._is_immediate):
            trigger: BaseTrigger
            if group.cron is not None:
                trigger = ScheduleTrigger(group.cron)
                first = trigger.first_run_time(now)
            else:
                trigger = IntervalTrigger(
                    seconds=group.seconds, start_date=now, timezone=timezone.utc
                )
                first = now + timedelta(seconds=group.seconds)
            if first is None:  # a cron schedule past its end: nothing left to run
                _LOGGER.warning("%s: the schedule has ended", self._groups.describe(group))
            else:
                group.job = scheduler.add_job(
                    self._groups.dispatch,
                    trigger=trigger,
                    args=(group,),
                    id=group.id,
                    name=_JOB_NAME,
                    next_run_time=first,
                )
            job = group.job
            for link in group.links.values():
                link.set_job(job)
            if group.immediate:
                # Tick 0 of the grid, dispatched here rather than by the scheduler: at start
                # its thread is only just starting, which would make every first transfer late.
                self._groups.dispatch(group)

    def _unschedule(self, link: Link) -> None:
        link.set_job(None)
        emptied = self._groups.remove(link)
        if emptied is not None and emptied.job is not None and self._scheduler is not None:
            with contextlib.suppress(LookupError):  # already gone with a stopped scheduler
                emptied.job.remove()

    def _immediate_transfers(self, links: list[Link]) -> None:
        """The first run of an immediate link is dispatched at start time instead."""

    # -- lifecycle --------------------------------------------------------------------------

    def _start_planner(self) -> None:
        with self._links_lock:
            now = datetime.now(timezone.utc)  # the grid's anchor, before building the scheduler
            self._scheduler = self._new_scheduler()
            self._groups.pool = WorkerPool(self._threads, name="databay_bus-aps")
            self._add_groups(self._scheduler, list(self._links.values()), now)
            self._scheduler.start()

    def _shutdown_planner(self, wait: bool = True) -> None:
        scheduler, self._scheduler = self._scheduler, None
        with self._links_lock:  # not while add_links adds groups
            pool = self._groups.close()
        if scheduler is not None and scheduler.running:  # not if a signal cut its start short
            scheduler.shutdown(wait=wait)
        if pool is not None:
            pool.shutdown(wait=wait)

    def pause(self) -> None:
        """Stop starting transfers until :meth:`resume`; transfers in flight finish.

        Also works while the planner is starting (e.g. right after
        ``Thread(target=planner.start).start()``): it is applied once the scheduler runs.

        Raises:
            PlannerStateError: the planner is neither starting nor running.
        """
        self._request_pause(True, "pause")
        _LOGGER.info("Pausing %s", self)

    def resume(self) -> None:
        """Start transferring again after :meth:`pause` (also while starting).

        Raises:
            PlannerStateError: the planner is neither starting nor running.
        """
        self._request_pause(False, "resume")
        _LOGGER.info("Resuming %s", self)

    def _pause_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.pause()

    def _resume_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.resume()

    def __repr__(self) -> str:
        return f"ApsPlanner(threads:{self._threads})"


class APSPlanner(ApsPlanner):
    """Deprecated: Databay's old name for :class:`ApsPlanner` (renamed in Databay 0.1.7)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            "APSPlanner is deprecated; use ApsPlanner instead", DeprecationWarning, stacklevel=2
        )
        super().__init__(*args, **kwargs)
