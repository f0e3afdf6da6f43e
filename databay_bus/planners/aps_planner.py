"""ApsPlanner: links scheduled by APScheduler 3.x, one scheduler per planner.

Links scheduled together (at start, or in one ``add_links`` call) that share an interval and
the immediate-transfer flag form a *group*, and each group is one APScheduler job on one
interval grid. The job only dispatches: it runs inline in the scheduler's thread and hands
every link of its group to the planner's worker pool. APScheduler's per-job costs (adding a
job, checking its callable, looking for due jobs) are then paid per group, not per link:
10,000 links at the same interval are one job.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from databay_bus._concurrency import WorkerPool
from databay_bus.errors import PlannerStateError
from databay_bus.link import Link
from databay_bus.planners.base import BasePlanner, _deprecated_catch_exceptions

__all__ = ["APSPlanner", "ApsPlanner"]

_LOGGER = logging.getLogger(__name__)
_JOB_NAME = "databay_bus transfers"
_NAMED_IN_LOGS = 3  # links named when a group's tick is reported; the rest are counted


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


class _Group:
    """Links scheduled together with one interval and one immediate flag: one APS job.

    ``pending`` holds the ids of its links with a transfer queued or running on the pool
    (set operations are atomic); a group lives as long as one run of the planner, so a
    transfer still hung from an earlier run never blocks the links of the next one.
    """

    __slots__ = ("job", "job_id", "links", "pending")

    def __init__(self, job_id: str, links: list[Link]) -> None:
        self.job_id = job_id
        self.links: dict[int, Link] = {id(link): link for link in links}  # O(1) removal
        self.job: Job | None = None
        self.pending: set[int] = set()


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
    when they were scheduled; ``link.job`` is that shared job, so pausing or removing it
    affects the whole group. A tick of a link whose previous transfer is still queued or
    running is skipped with a WARNING and counted; a queued transfer whose link is removed,
    or whose planner stops, is dropped. Missed ticks are logged. A new scheduler is made at
    every ``start()``, so a stopped planner can start again.
    """

    _start_planner_blocks = False

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
        self._threads = threads
        self._executors_override = dict(executors_override or {})
        self._job_defaults_override = dict(job_defaults_override or {})
        self._scheduler: BackgroundScheduler | None = None
        self._pool: WorkerPool | None = None
        self._job_ids = itertools.count()
        # Scheduled links by id and the groups by job id. Guarded by _groups_lock, a leaf
        # lock: never held while calling APScheduler, whose scheduler thread holds its own
        # job store lock while it runs a dispatch job (which takes _groups_lock).
        self._groups_lock = threading.Lock()
        self._group_of: dict[int, _Group] = {}
        self._groups: dict[str, _Group] = {}
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
        links = self._describe(group) if group is not None else f"job {event.job_id}"
        if event.code == EVENT_JOB_MISSED:
            _LOGGER.warning(
                "%s: transfer due at %s was missed",
                links,
                event.scheduled_run_time,
            )
        else:
            _LOGGER.warning("%s: transfer skipped, too many running at once", links)

    def _describe(self, group: _Group) -> str:
        """The group's first few links and how many there are: cheap for any group size."""
        with self._groups_lock:
            count = len(group.links)
            named = list(itertools.islice(group.links.values(), _NAMED_IN_LOGS))
        text = ", ".join(_name(link) for link in named)
        return text if count <= len(named) else f"{text} and {count - len(named)} more link(s)"

    # -- scheduling -------------------------------------------------------------------------

    def _schedule(self, link: Link) -> None:
        self._schedule_many([link])

    def _schedule_many(self, links: list[Link]) -> None:
        if self._scheduler is not None and links:
            self._add_groups(self._scheduler, links, datetime.now(timezone.utc))

    def _add_groups(self, scheduler: BackgroundScheduler, links: list[Link], now: datetime) -> None:
        """Add one job per (interval, immediate) group of ``links``, on grids anchored at now;
        dispatch the immediate groups' first transfers at once."""
        buckets: dict[tuple[float, bool], list[Link]] = {}
        for link in links:
            immediate = self.immediate_transfer and link.immediate_transfer
            buckets.setdefault((link.interval.total_seconds(), immediate), []).append(link)
        for (seconds, immediate), members in buckets.items():
            group = _Group(str(next(self._job_ids)), members)
            with self._groups_lock:  # before the job exists: an immediate tick may come at once
                self._groups[group.job_id] = group
                for link in members:
                    self._group_of[id(link)] = group
            job = scheduler.add_job(
                self._dispatch,
                trigger=IntervalTrigger(seconds=seconds, start_date=now, timezone=timezone.utc),
                args=(group,),
                id=group.job_id,
                name=_JOB_NAME,
                next_run_time=now + members[0].interval,
            )
            group.job = job
            for link in members:
                link.set_job(job)
            if immediate:
                # Tick 0 of the grid, dispatched here rather than by the scheduler: at start
                # its thread is only just starting, which would make every first transfer late.
                self._dispatch(group)

    def _unschedule(self, link: Link) -> None:
        link.set_job(None)
        with self._groups_lock:
            group = self._group_of.pop(id(link), None)
            if group is None:
                return
            del group.links[id(link)]
            if group.links:
                return
            del self._groups[group.job_id]
        if group.job is not None and self._scheduler is not None:
            with contextlib.suppress(LookupError):  # already gone with a stopped scheduler
                group.job.remove()

    def _immediate_transfers(self, links: list[Link]) -> None:
        """The first run of an immediate link is scheduled at start time instead."""

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, group: _Group) -> None:
        """One tick of a group: queue each idle link's transfer on the pool (scheduler thread)."""
        pool = self._pool
        if pool is None:
            return
        with self._groups_lock:
            members = list(group.links.values())
        pending = group.pending
        for link in members:
            key = id(link)
            if key in pending:
                self._skip(link)
                continue
            pending.add(key)
            try:
                pool.submit(self._run_pooled, link, group)
            except RuntimeError:  # the pool was shut down: this planner is stopping
                pending.discard(key)
                return

    def _run_pooled(self, link: Link, group: _Group) -> None:
        """A worker's part of a tick. A tick still queued when its link left the group
        (removed, or the planner stopped) is dropped: it would run on shut-down nodes."""
        try:
            if self._group_of.get(id(link)) is group:
                self._run_transfer(link)
        finally:
            group.pending.discard(id(link))

    @staticmethod
    def _skip(link: Link) -> None:
        link.metrics.add_skipped()
        _LOGGER.warning(
            "%s: transfer skipped, the previous transfer of this link is still running",
            _name(link),
        )

    # -- lifecycle --------------------------------------------------------------------------

    def _start_planner(self) -> None:
        with self._links_lock:
            now = datetime.now(timezone.utc)  # the grid's anchor, before building the scheduler
            self._scheduler = self._new_scheduler()
            self._pool = WorkerPool(self._threads, name="databay_bus-aps")
            self._add_groups(self._scheduler, self._links, now)
            self._scheduler.start()

    def _shutdown_planner(self, wait: bool = True) -> None:
        scheduler, self._scheduler = self._scheduler, None
        pool, self._pool = self._pool, None
        with self._links_lock, self._groups_lock:  # not while add_links adds groups
            groups, self._group_of, self._groups = self._groups, {}, {}
        for group in groups.values():
            for link in group.links.values():
                link.set_job(None)
        if scheduler is not None and scheduler.running:  # not if a signal cut its start short
            scheduler.shutdown(wait=wait)
        if pool is not None:
            pool.shutdown(wait=wait)

    def pause(self) -> None:
        """Stop starting transfers until :meth:`resume`; transfers in flight finish."""
        self._running_scheduler("pause").pause()
        _LOGGER.info("Pausing %s", self)

    def resume(self) -> None:
        """Start transferring again after :meth:`pause`."""
        self._running_scheduler("resume").resume()
        _LOGGER.info("Resuming %s", self)

    def _running_scheduler(self, action: str) -> BackgroundScheduler:
        if self._scheduler is None or not self.running:
            raise PlannerStateError(f"{self!r} cannot {action}: it is {self.state.value}")
        return self._scheduler

    def __repr__(self) -> str:
        return f"ApsPlanner(threads:{self._threads})"


class APSPlanner(ApsPlanner):
    """Deprecated: Databay's old name for :class:`ApsPlanner` (renamed in Databay 0.1.7)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            "APSPlanner is deprecated; use ApsPlanner instead", DeprecationWarning, stacklevel=2
        )
        super().__init__(*args, **kwargs)


def _name(link: Link) -> str:
    """How logs name a link: its tags, as the link's own messages do, else its repr."""
    return ".".join(link.tags) or repr(link)
