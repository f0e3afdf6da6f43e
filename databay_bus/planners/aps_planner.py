"""ApsPlanner: links scheduled by APScheduler 3.x, one scheduler per planner."""

from __future__ import annotations

import contextlib
import itertools
import logging
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from databay_bus._concurrency import WorkerPool
from databay_bus.errors import PlannerStateError
from databay_bus.link import Link
from databay_bus.planners.base import BasePlanner, _deprecated_catch_exceptions

__all__ = ["APSPlanner", "ApsPlanner"]

_LOGGER = logging.getLogger(__name__)
_JOB_NAME = "databay_bus transfer"


class _DaemonPoolExecutor(BasePoolExecutor):  # type: ignore[misc]
    """APScheduler executor on a :class:`WorkerPool`, so a hung transfer never blocks exit."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(WorkerPool(max_workers, name="databay_bus-aps"))


class ApsPlanner(BasePlanner):
    """Schedules links with an APScheduler 3.x ``BackgroundScheduler`` of its own (UTC).

    Args:
        threads: worker threads running transfers.
        executors_override: APScheduler executors merged over ``{'default': <pool>}``.
        job_defaults_override: merged over ``{'coalesce': False, 'max_instances': threads}``.
        links, ignore_exceptions, immediate_transfer, shutdown_at_exit: see BasePlanner.
        catch_exceptions: deprecated spelling of ``ignore_exceptions``.

    Overlapping ticks of one link are skipped with a WARNING; missed ticks are logged.
    A new scheduler is made at every ``start()``, so a stopped planner can start again.
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
        self._job_ids = itertools.count()
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
            executors={"default": _DaemonPoolExecutor(self._threads), **self._executors_override},
            job_defaults={
                "coalesce": False,
                "max_instances": self._threads,
                **self._job_defaults_override,
            },
            timezone=timezone.utc,
        )
        scheduler.add_listener(self._on_job_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        link = next((k for k in self.links if k.job is not None and k.job.id == event.job_id), None)
        if event.code == EVENT_JOB_MISSED:
            _LOGGER.warning("%s: transfer due at %s was missed", link, event.scheduled_run_time)
        else:
            _LOGGER.warning("%s: transfer skipped, too many running at once", link)

    def _schedule(self, link: Link) -> None:
        if self._scheduler is not None:
            self._add_job(link, datetime.now(timezone.utc), {})

    def _add_job(self, link: Link, now: datetime, triggers: dict[float, IntervalTrigger]) -> None:
        """Add ``link``'s job on the grid ``now + k * interval``.

        Links scheduled together share one (stateless) trigger per interval, and job ids
        are short counters rather than UUIDs: a 10,000-link planner saves megabytes.
        """
        assert self._scheduler is not None
        seconds = link.interval.total_seconds()
        trigger = triggers.get(seconds)
        if trigger is None:
            trigger = IntervalTrigger(seconds=seconds, start_date=now, timezone=timezone.utc)
            triggers[seconds] = trigger
        immediate = self.immediate_transfer and link.immediate_transfer
        job = self._scheduler.add_job(
            self._run_transfer,
            trigger=trigger,
            args=(link,),
            id=str(next(self._job_ids)),
            name=_JOB_NAME,
            next_run_time=now if immediate else now + link.interval,
        )
        link.set_job(job)

    def _unschedule(self, link: Link) -> None:
        job = link.job
        link.set_job(None)
        if job is not None and self._scheduler is not None:
            with contextlib.suppress(LookupError):  # already gone with a stopped scheduler
                job.remove()

    def _immediate_transfers(self, links: list[Link]) -> None:
        """The first run of an immediate link is scheduled at start time instead."""

    def _start_planner(self) -> None:
        with self._links_lock:
            self._scheduler = self._new_scheduler()
            now, triggers = datetime.now(timezone.utc), dict[float, IntervalTrigger]()
            for link in self._links:
                self._add_job(link, now, triggers)
            self._scheduler.start()

    def _shutdown_planner(self, wait: bool = True) -> None:
        scheduler, self._scheduler = self._scheduler, None
        for link in self.links:
            link.set_job(None)
        if scheduler is not None:
            scheduler.shutdown(wait=wait)

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
