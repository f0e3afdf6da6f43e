"""Group commit for SqliteQueue: writes of several threads share one transaction.

A thread that writes while no commit is under way commits at once (it *leads*). Writes
that arrive while one commits wait, and the leader's thread hands the lead to the first of
them, which commits them all in the next transaction: with many links on one file, the
disk's fsync rate then bounds commits, not transfers. Each waiting write sleeps on its own
lock, so the leader wakes exactly the threads it committed for.

A write may also be *posted*: queued behind the commit under way without its thread
waiting (SqliteQueue posts an ack whose outcome it already knows). A posted write is
committed with the next group by whichever thread leads it; if no waiting thread is left
to lead, the leader commits the posted writes itself before it returns. :meth:`settle`
waits until posted writes are committed, for reads that must see them.

This module knows nothing of SQL: ``commit`` (SqliteQueue._commit_group) runs the jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

from databay_bus.errors import QueueError

__all__ = ["GroupCommit", "Job"]

_LOGGER = logging.getLogger("databay_bus.queue.sqlite")


class Job:
    """One write waiting for a commit: what it does, and how it went.

    ``work`` runs inside the group's transaction (None: nothing to write; a reader's
    barrier, see :meth:`GroupCommit.settle`).
    """

    __slots__ = ("doing", "durable", "error", "key", "lead", "result", "wake", "work")

    def __init__(
        self,
        work: Callable[[Any], Any] | None,
        durable: bool = True,
        doing: str = "storing records",
    ) -> None:
        self.work = work
        self.durable = durable  # the commit must be fsynced (an enqueue)
        self.doing = doing
        self.result: Any = None
        self.error: BaseException | None = None
        self.lead = False  # this job's thread commits the next group
        self.wake: threading.Lock | None = None  # held until done or leading
        self.key: Hashable = None  # a posted job's key (see GroupCommit.post)


class GroupCommit:
    """The jobs waiting for the next commit, and who commits them.

    Args:
        owner: named in log lines (the queue).
        commit: runs a group of jobs in one transaction, setting each one's result or
            error (it raises only when the whole transaction failed).
    """

    def __init__(self, owner: object, commit: Callable[[list[Job]], None]) -> None:
        self._owner = owner
        self._commit = commit
        self._mutex = threading.Lock()
        self._waiting: list[Job] = []  # in arrival order; a job handed the lead stays in
        self._busy = False  # a thread leads (commits, or is about to)
        self._posted: dict[Hashable, int] = {}  # key -> posted jobs not yet committed

    def run(self, job: Job) -> Any:
        """Commit ``job`` with the next group; return its result once committed."""
        with self._mutex:
            self._waiting.append(job)
            if self._busy:
                job.wake = threading.Lock()
                job.wake.acquire()
            else:
                self._busy = job.lead = True
        if job.wake is not None:
            try:
                job.wake.acquire()  # released by the leader: done, or leading the next group
            except BaseException:  # e.g. KeyboardInterrupt in the main thread
                self._abandon(job)
                raise
        if job.lead:
            self._lead(job)
        if job.error is not None:
            raise job.error
        return job.result

    def post(self, job: Job, key: Hashable) -> bool:
        """Queue ``job`` behind the commit under way and return True at once; False (and
        nothing queued) when no commit is under way: the caller then :meth:`run`s it."""
        with self._mutex:
            if not self._busy:
                return False
            job.key = key
            self._posted[key] = self._posted.get(key, 0) + 1
            self._waiting.append(job)
        return True

    def settle(self, key: Hashable = None) -> None:
        """Return once every job posted so far (with ``key``; None: any) is committed."""
        with self._mutex:
            posted = bool(self._posted) if key is None else key in self._posted
        if posted:  # a barrier: it commits with or after the group holding them
            self.run(Job(None, False, "reading"))

    def _abandon(self, job: Job) -> None:
        """``job``'s thread stopped waiting: take the job out of the queue, or pass on the
        lead it was handed (else no one would ever commit again)."""
        with self._mutex:
            if job in self._waiting:
                self._waiting.remove(job)
            if not job.lead:  # not taken yet, or in a group already (committed without it)
                return
            following = self._handed_on()
        if following is not None and following.wake is not None:
            following.wake.release()

    def _handed_on(self) -> Job | None:
        """The first waiting thread, now leading; None: no thread waits, so the lead is
        free (posted jobs left then go with the next write or settle). Under ``_mutex``."""
        for following in self._waiting:
            if following.wake is not None:
                following.lead = True
                return following
        self._busy = False
        return None

    def _lead(self, job: Job) -> None:
        """Commit the waiting jobs (``job`` among them), wake their threads and hand on the
        lead; while only posted jobs wait, commit them too."""
        while True:
            with self._mutex:
                jobs, self._waiting = self._waiting, []
            try:
                self._commit(jobs)
            except BaseException as exc:
                shared = (
                    exc
                    if isinstance(exc, Exception)
                    else QueueError(f"{self._owner!r}: the commit was interrupted ({exc!r})")
                )
                for other in jobs:
                    if other.error is None and other.work is not None:
                        other.result = None
                        other.error = exc if other is job else shared
            finally:
                with self._mutex:
                    if self._posted:
                        for other in jobs:
                            if other.key is not None:
                                self._settled(other)
                    waiting = self._waiting
                    posted_only = bool(waiting) and all(other.wake is None for other in waiting)
                    following = None if posted_only else self._handed_on()
                for other in jobs:
                    if other.wake is not None and other is not job:
                        other.wake.release()
                if following is not None and following.wake is not None:
                    following.wake.release()
            if not posted_only:
                return

    def _settled(self, job: Job) -> None:
        """A posted job's group committed (or failed); under ``_mutex``."""
        left = self._posted.pop(job.key) - 1
        if left:
            self._posted[job.key] = left
        if job.error is not None:
            _LOGGER.warning(
                "%r: %s failed after the call returned (%s); those records will be delivered again",
                self._owner,
                job.doing,
                job.error,
            )
