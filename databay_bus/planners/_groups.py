"""Link groups: what both built-in planners schedule instead of one job per link.

Links scheduled together (at ``start()``, or in one ``add_links`` call) that share an interval
(or an equal ``Cron`` schedule) and the immediate-transfer flag form a :class:`Group`, and the
scheduler gets one job per group on one grid. The job only dispatches:
:meth:`LinkGroups.dispatch` hands the group's idle links to the planner's worker pool and
returns. A scheduler's per-job costs (adding a job, finding due jobs, its memory) are then
paid per group: 10,000 links at one interval are one job.

A tick's links then run as a transfer's outlet lanes do (``_concurrency.start_isolated``): one
worker runs the quick ones one after another, and links that proved slow (a transfer over
``TICK_BUDGET``) get a worker each. Should the quick ones together take longer than the
budget, a watchdog hands the rest to other workers, so no link of a tick waits more than about
that long to start. Waking one worker per link instead cost each tick's last link milliseconds
on a 2-core machine (thread wake-ups and start-ups queued behind each other).
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from databay_bus._concurrency import INLINE_BUDGET, WorkerPool, start_isolated
from databay_bus._streaks import Repeats
from databay_bus.link import Link
from databay_bus.schedules import Cron

__all__ = ["TICK_BUDGET", "Group", "LinkGroups", "link_name"]

_LOGGER = logging.getLogger(__name__)
_NAMED_IN_LOGS = 3  # links named when a group's tick is reported; the rest are counted
#: How long a tick's quick links may run one after another before the rest go to other workers.
TICK_BUDGET = INLINE_BUDGET
#: A hung link skips every tick: one WARNING, then at most one a minute (with a count).
SKIPS = Repeats(_LOGGER)


class Group:
    """Links with one interval (or Cron) and one immediate flag, scheduled together: one job.

    ``cron`` is the group's Cron schedule, None for an interval group (``seconds`` is then
    its interval; 0.0 for a cron group). ``pending`` holds the ids of its links with a
    transfer queued or running on the pool, ``slow`` those whose transfers start on a worker
    of their own (set operations are atomic). A group lives for one run of the planner, so a
    transfer still hung from an earlier run never blocks the links of the next one.
    """

    __slots__ = ("cron", "fire", "id", "immediate", "job", "links", "pending", "seconds", "slow")

    def __init__(
        self, group_id: str, every: float | Cron, immediate: bool, links: list[Link]
    ) -> None:
        self.id = group_id
        self.cron = every if isinstance(every, Cron) else None
        self.seconds = 0.0 if isinstance(every, Cron) else every
        self.fire: Any = None  # a planner's bookkeeping of the next tick, if it needs one
        self.immediate = immediate
        self.links: dict[int, Link] = {id(link): link for link in links}  # O(1) removal
        self.job: Any = None
        self.pending: set[int] = set()
        self.slow: set[Hashable] = set()


class LinkGroups:
    """A planner's groups, the worker pool they dispatch to, and the bookkeeping between.

    The lock is a leaf: never held while calling the scheduler, whose thread may hold its own
    lock while it runs a dispatch (which takes this one).
    """

    def __init__(self, run_transfer: Callable[[Link], None]) -> None:
        self._run_transfer = run_transfer
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._group_of: dict[int, Group] = {}
        self._groups: dict[str, Group] = {}
        self.pool: WorkerPool | None = None

    def form(self, links: Sequence[Link], immediate: Callable[[Link], bool]) -> list[Group]:
        """Register ``links`` in new groups, one per (interval or Cron, immediate) pair."""
        buckets: dict[tuple[float | Cron, bool], list[Link]] = {}
        for link in links:
            interval = link.interval
            every = interval if isinstance(interval, Cron) else interval.total_seconds()
            buckets.setdefault((every, immediate(link)), []).append(link)
        groups = [
            Group(str(next(self._ids)), every, flag, members)
            for (every, flag), members in buckets.items()
        ]
        with self._lock:  # before any job exists: a tick may come at once
            for group in groups:
                self._groups[group.id] = group
                for key in group.links:  # the int objects of group.links, not new ones
                    self._group_of[key] = group
        return groups

    def get(self, group_id: str) -> Group | None:
        """The group with this id, if it is still scheduled."""
        return self._groups.get(group_id)

    def of(self, link: Link) -> Group | None:
        """The group ``link`` is scheduled in, if any."""
        return self._group_of.get(id(link))

    def __len__(self) -> int:
        return len(self._groups)

    def remove(self, link: Link) -> Group | None:
        """Take ``link`` out of its group; return the group if it is now empty (and gone)."""
        with self._lock:
            group = self._group_of.pop(id(link), None)
            if group is None:
                return None
            del group.links[id(link)]
            group.slow.discard(id(link))
            if group.links:
                return None
            del self._groups[group.id]
        return group

    def close(self) -> WorkerPool | None:
        """Forget every group and clear its links' jobs (the planner stops); return the pool,
        for the planner to shut down. Queued ticks are then dropped by the workers."""
        with self._lock:
            pool, self.pool = self.pool, None
            groups = list(self._groups.values())
            self._group_of, self._groups = {}, {}
        for group in groups:
            for link in group.links.values():
                link.set_job(None)
        return pool

    def dispatch(self, group: Group) -> None:
        """One tick of ``group``: queue its idle links' transfers on the pool and return.

        A link whose previous tick is still queued or running is skipped with a WARNING and
        counted, instead of piling up runs behind it.
        """
        pool = self.pool
        if pool is None:
            return
        with self._lock:
            members = list(group.links.values())
        pending = group.pending
        due: list[Link] = []
        for link in members:
            key = id(link)
            if key in pending:
                link.metrics.add_skipped()
                SKIPS.note(
                    key,
                    logging.WARNING,
                    "%s: transfer skipped, the previous transfer of this link is still running",
                    link_name(link),
                )
                continue
            SKIPS.clear(key)
            pending.add(key)
            due.append(link)
        if not due:
            return
        try:
            if len(due) == 1:
                pool.submit(self._run_pooled, due[0], group)
            else:
                pool.submit(self._run_tick, due, group, pool)
        except RuntimeError:  # the pool was shut down: the planner is stopping
            self._release(due, group)

    def _run_tick(self, due: list[Link], group: Group, pool: WorkerPool) -> None:
        """A worker's part of a tick of several links (see the module doc)."""
        run = functools.partial(self._run_pooled, group=group)
        try:
            _, futures = start_isolated(run, due, group.slow, id, pool, TICK_BUDGET)
        except BaseException:  # e.g. a SystemExit from a node: the links not started yet
            # run at their next tick, not skipped from now on (one handed to another worker
            # and still running is then kept from a second transfer by _run_transfer)
            self._release(due, group)
            raise
        if futures is not None:  # ticks the stopping planner's pool refused: nothing runs them
            self._release(
                [due[index] for index, future in futures.items() if future.cancelled()], group
            )

    def _run_pooled(self, link: Link, group: Group) -> None:
        """A worker's part of a tick, for one link. A tick still queued when its link left
        the group (removed, or the planner stopped) is dropped: it would run on shut-down
        nodes."""
        try:
            if self.of(link) is group:
                self._run_transfer(link)
        finally:
            group.pending.discard(id(link))

    @staticmethod
    def _release(links: list[Link], group: Group) -> None:
        """Mark ``links`` idle again: their tick will not run."""
        for link in links:
            group.pending.discard(id(link))

    def describe(self, group: Group) -> str:
        """The group's first few links and how many there are: cheap for any group size."""
        with self._lock:
            count = len(group.links)
            named = list(itertools.islice(group.links.values(), _NAMED_IN_LOGS))
        text = ", ".join(link_name(link) for link in named)
        return text if count <= len(named) else f"{text} and {count - len(named)} more link(s)"


def link_name(link: Link) -> str:
    """How logs name a link: its tags, as the link's own messages do, else its repr."""
    return ".".join(link.tags) or repr(link)
