"""Operating a running planner: pause/resume a link or the planner, transfer now.

Pausing a link unschedules it through the planner's own scheduler hooks (``_unschedule`` /
``_schedule_many``, the API every planner implements) under the planner's link lock; the link
stays in the planner and a transfer in flight finishes. Resuming schedules it again (an
immediate link transfers at once, as when it was added). Pauses last until resumed or until
the planner restarts.
"""

from __future__ import annotations

import threading
from typing import Any

from databay_bus.errors import PlannerStateError
from databay_bus.link import Link

__all__ = ["Control", "PipelineClosed"]


class PipelineClosed(PlannerStateError):
    """The planner stopped and its queues may be closing: nothing reads them until it starts
    again (or a reload hands the interface a new planner)."""


class Control:
    """Pause, resume and expedite the links of ``planner``."""

    def __init__(self, planner: Any) -> None:
        self.planner = planner
        self._paused: set[int] = set()
        self._planner_paused = False
        self._lock = threading.Lock()

    def is_paused(self, link: Link) -> bool:
        """True when ``link`` was paused here and is still unscheduled."""
        return id(link) in self._paused and link.job is None

    @property
    def planner_paused(self) -> bool:
        """True while the whole planner is paused."""
        return self._planner_paused and self.planner.running

    def _require_running(self, action: str) -> None:
        if not self.planner.running:
            raise PlannerStateError(
                f"cannot {action}: the planner is {self.planner.state.value}, not running"
            )

    def pause(self, link: Link) -> bool:
        """Unschedule ``link``; False when it was already paused."""
        self._require_running("pause a link")
        with self.planner._links_lock, self._lock:
            if self.is_paused(link):
                return False
            if link.job is not None:
                self.planner._unschedule(link)
            self._paused.add(id(link))
            return True

    def resume(self, link: Link) -> bool:
        """Schedule ``link`` again; False when it was not paused."""
        self._require_running("resume a link")
        with self.planner._links_lock, self._lock:
            if not self.is_paused(link):
                self._paused.discard(id(link))
                return False
            self._paused.discard(id(link))
            self.planner._schedule_many([link])
            return True

    def pause_planner(self) -> None:
        """Pause every transfer (the planner's ``pause()``; else every link)."""
        self._require_running("pause the planner")
        pause = getattr(self.planner, "pause", None)
        if callable(pause):
            pause()
        else:
            for link in self.planner.links:
                self.pause(link)
        self._planner_paused = True

    def resume_planner(self) -> None:
        """Undo :meth:`pause_planner`."""
        self._require_running("resume the planner")
        resume = getattr(self.planner, "resume", None)
        if callable(resume):
            resume()
        else:
            for link in self.planner.links:
                self.resume(link)
        self._planner_paused = False

    def transfer_now(self, link: Link) -> None:
        """Run one transfer of ``link`` on a new thread (skipped if one is running)."""
        self._require_running("transfer now")
        threading.Thread(
            target=self.planner._run_transfer,
            args=(link,),
            name="databay_bus-web-transfer",
            daemon=True,
        ).start()
