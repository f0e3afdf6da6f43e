"""BasePlanner: the lifecycle every planner shares, whatever scheduler drives it.

States move ``STOPPED -> STARTING -> RUNNING -> STOPPING -> STOPPED``; a planner can be
started again after it stopped. Subclasses bring a scheduler by implementing four hooks
(see docs/extending.md):

* ``_schedule(link)`` / ``_unschedule(link)``: begin/stop calling ``self._run_transfer(link)``
  every ``link.interval`` (and call ``link.set_job``);
* ``_start_planner()`` / ``_shutdown_planner(wait)``: start and stop the scheduler.

As in Databay, ``start()`` returns when ``_start_planner`` returns: a subclass whose
``_start_planner`` starts a background scheduler and returns has a non-blocking ``start()``.
A subclass whose ``_start_planner`` blocks until shutdown says so with
``_start_planner_blocks = True`` (``start(block=False)`` then runs it on a thread). The built-in
planners return at once from ``_start_planner`` but set ``_blocking_start = True``: their
``start()`` waits until shutdown, as Databay's built-in planners do.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import enum
import logging
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from databay_bus._concurrency import io_pool
from databay_bus._signals import SignalGate, StopSignal, raise_on_signals
from databay_bus._streaks import FailureStreaks, Repeats
from databay_bus._validation import as_bool, as_list, optional_seconds
from databay_bus.errors import InvalidLinkError, MissingLinkError, PlannerStateError, describe
from databay_bus.link import Link, shutdown_links
from databay_bus.observers import (
    Event,
    LinkAdded,
    LinkRemoved,
    ObserverDispatcher,
    PlannerStarted,
    PlannerStopped,
)
from databay_bus.planners._links import LinkList
from databay_bus.planners._ticks import current_tick
from databay_bus.queue.base import RecordQueue
from databay_bus.queue.maintenance import QueueMaintenance
from databay_bus.status import planner_status

__all__ = ["BasePlanner", "PlannerState"]

_LOGGER = logging.getLogger(__name__)


class PlannerState(enum.Enum):
    """Where a planner is in its lifecycle."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


_exit_planners: weakref.WeakSet[BasePlanner] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _shutdown_planners_at_exit() -> None:
    for planner in list(_exit_planners):
        if planner.running:
            _LOGGER.info('Attempting to shutdown planner "%s" gracefully.', planner)
            planner.shutdown(wait=True, timeout=planner.shutdown_timeout)


class BasePlanner(abc.ABC):
    """Runs links on a schedule; start it, and shut it down when done.

    Args:
        links: a Link or a list of them to add now.
        ignore_exceptions: log a failed transfer and keep going; when False the planner logs
            the error and shuts down gracefully.
        immediate_transfer: run every link (whose own ``immediate_transfer`` is True) as soon
            as scheduling begins, instead of one interval later.
        shutdown_at_exit: shut down gracefully when the interpreter exits normally.
    """

    _start_planner_blocks: bool = False
    """True when ``_start_planner`` runs the scheduler in the calling thread until shutdown."""
    _blocking_start: bool = False
    """True when ``start()`` without ``block`` waits until shutdown (the built-in planners)."""

    def __init__(
        self,
        links: Link | Sequence[Link] | None = None,
        ignore_exceptions: bool = False,
        immediate_transfer: bool = True,
        shutdown_at_exit: bool = False,
    ) -> None:
        # The links by id, in the order added: a list to walk, and O(1) to find and remove
        # (remove_links of half of 20,000 links took 0.55 s with a list, growing as n squared).
        self._links: dict[int, Link] = {}
        self._links_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._state_changed = threading.Condition(self._state_lock)
        self._state = PlannerState.STOPPED
        self._stopped = threading.Event()
        self._stopped.set()
        self._start_aborted = False  # a failure or shutdown() arrived while starting
        self._starting_thread: threading.Thread | None = None
        self._paused = False  # pause() asked for; applied by _enter_running if asked early
        # Links in a transfer this planner runs: link id -> the running thread's ident.
        self._transferring: dict[int, int] = {}
        self._winding_down: int | None = None  # ident of the thread in _wind_down
        self._unstarted: set[int] = set()  # ids of links whose on_start failed (ignored)
        self._streaks = FailureStreaks(_LOGGER)  # repeated failures: one traceback per streak
        self._shutdown_timeout: float | None = None
        self._skips = Repeats(_LOGGER)  # ticks skipped behind a hung transfer: a line a minute
        owner = type(self).__name__
        self.ignore_exceptions = as_bool(ignore_exceptions, "ignore_exceptions", owner)
        self.immediate_transfer = as_bool(immediate_transfer, "immediate_transfer", owner)
        self._shutdown_at_exit = False
        self.shutdown_at_exit = shutdown_at_exit
        self._observers = ObserverDispatcher()
        self._emit_event = self._observers.emit  # one bound method shared by every link
        self._link_listeners = (self._emit_event,)  # and one tuple of it (Link._listen)
        self._maintenance: QueueMaintenance | None = None  # queue retention, see start()
        # The links' distinct queues: id -> (queue, links on it). Kept as links come and go,
        # so the maintenance thread never walks 100,000 links to find none.
        self._queues: dict[int, tuple[RecordQueue, int]] = {}
        self._unwatch: list[Callable[[], None]] = []  # wake-up subscriptions to shared queues
        self._waking: set[int] = set()  # ids of links running a wake-up's delivery
        self._signal_gate: SignalGate | None = None  # while a blocking start() waits
        if links is not None:
            self.add_links(links)

    # -- configuration ----------------------------------------------------------------------

    @property
    def shutdown_at_exit(self) -> bool:
        """Shut down gracefully at interpreter exit (not on SIGKILL)."""
        return self._shutdown_at_exit

    @shutdown_at_exit.setter
    def shutdown_at_exit(self, value: bool) -> None:
        global _exit_hook_registered
        self._shutdown_at_exit = as_bool(value, "shutdown_at_exit", type(self).__name__)
        with _exit_hook_lock:
            if not value:
                _exit_planners.discard(self)
                return
            _exit_planners.add(self)
            if not _exit_hook_registered:
                atexit.register(_shutdown_planners_at_exit)
                _exit_hook_registered = True

    @property
    def shutdown_timeout(self) -> float | None:
        """Seconds ``with planner:``, a signal and the exit hook wait for transfers in flight
        when shutting down; None (the default) waits as long as they take."""
        return self._shutdown_timeout

    @shutdown_timeout.setter
    def shutdown_timeout(self, value: float | None) -> None:
        self._shutdown_timeout = optional_seconds(value, "shutdown_timeout", type(self).__name__)

    @property
    def links(self) -> list[Link]:
        """The planner's links: a snapshot, whose changing methods raise ``TypeError``."""
        with self._links_lock:
            return LinkList(self._links.values())

    @property
    def state(self) -> PlannerState:
        """The planner's lifecycle state."""
        return self._state

    @property
    def running(self) -> bool:
        """True while the planner schedules transfers."""
        return self._state is PlannerState.RUNNING

    # -- links ------------------------------------------------------------------------------

    def add_links(self, links: Link | Sequence[Link]) -> None:
        """Add and schedule links, also while running (their nodes are started first).

        Raises:
            InvalidLinkError: an item is not a Link, or is already in this planner.
        """
        new = as_list(links)
        with self._links_lock:
            seen: set[int] = set()
            for index, link in enumerate(new):
                if not isinstance(link, Link):
                    raise InvalidLinkError(
                        f"{self!r}: links[{index}] must be a Link instance, got {describe(link)}"
                    )
                if id(link) in self._links or id(link) in seen:
                    raise InvalidLinkError(f"{self!r}: links[{index}] {link!r} is already added")
                seen.add(id(link))
            added: list[Link] = []
            for link in new:
                self._links[id(link)] = link
                self._count_queue(link, 1)
                link._listen(self._link_listeners)
                starting = self._state in (PlannerState.STARTING, PlannerState.RUNNING)
                if starting and not self._start_link(link):
                    continue
                added.append(link)
            self._schedule_many(added)
            observed = self._observers.listening  # no event built per link unless observed
            for link in added:
                _LOGGER.info("Added link: %s", link)
                if observed:
                    self._observers.emit(LinkAdded(self, link))

    def remove_links(self, links: Link | Sequence[Link]) -> None:
        """Unschedule and remove links, also while running; their nodes are shut down once
        their last transfer ends (unless another running link still holds them).

        Raises:
            MissingLinkError: a link is not in this planner (nothing is removed then).
        """
        old = as_list(links)
        with self._links_lock:
            for index, link in enumerate(old):
                if id(link) not in self._links:
                    raise MissingLinkError(
                        f"{self!r}: links[{index}] {link!r} is not in this planner"
                    )
            for link in old:
                self._drop_link(link)

    def purge(self) -> None:
        """Unschedule and remove every link."""
        with self._links_lock:
            for link in reversed(list(self._links.values())):  # last added first, as before
                self._drop_link(link)

    def _drop_link(self, link: Link) -> None:
        if link.job is not None:
            self._unschedule(link)
        if self._links.pop(id(link), None) is None:  # listed twice in one remove_links
            return
        self._count_queue(link, -1)
        link.remove_listener(self._emit_event)
        _stop_drains([link])
        if self._state is not PlannerState.STOPPED:
            self._stop_link(link)
        self._unstarted.discard(id(link))
        _LOGGER.info("Removed link: %s", link)
        if self._observers.listening:  # no event built per link unless observed
            self._observers.emit(LinkRemoved(self, link))

    def _count_queue(self, link: Link, change: int) -> None:
        """Count ``link`` in (1) or out of (-1) the index of queues (links lock held)."""
        queue = link.queue
        if not isinstance(queue, RecordQueue):
            return
        count = self._queues.get(id(queue), (queue, 0))[1] + change
        if count:
            self._queues[id(queue)] = (queue, count)
        else:
            del self._queues[id(queue)]

    def _link_queues(self) -> list[RecordQueue]:
        """The distinct queues of the planner's links."""
        with self._links_lock:
            return [queue for queue, _ in self._queues.values()]

    def _start_link(self, link: Link) -> bool:
        if self._queues:  # a queued link drains backlogs again (see shutdown)
            allow = getattr(link._delivery, "allow_drains", None)
            if allow is not None:
                allow()
        try:
            link.on_start()
        except Exception as exc:
            if not self.ignore_exceptions:
                self._on_exception(exc, link)
                return False
            # Kept and scheduled: each tick tries to start it again, and is skipped meanwhile.
            self._unstarted.add(id(link))
            self._streaks.failed(("start", id(link)), f"{_name(link)}: on_start", exc)
        return True

    def _retry_start(self, link: Link) -> bool:
        """A tick of a link whose nodes failed to start: try again; False to skip the tick."""
        key = ("start", id(link))
        try:
            link.on_start()
        except Exception as exc:
            link.metrics.add_skipped()
            self._streaks.failed(key, f"{_name(link)}: on_start (transfers skipped)", exc)
            return False
        self._unstarted.discard(id(link))
        self._streaks.succeeded(key, f"{_name(link)}: on_start")
        return True

    def _stop_link(self, link: Link) -> None:
        try:
            link.on_shutdown()
        except Exception as exc:
            _LOGGER.error("%s: on_shutdown failed for %s", self, link, exc_info=exc)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, block: bool | None = None) -> None:
        """Start every link's nodes, then scheduling.

        Args:
            block: wait until the planner is shut down (in the main thread SIGINT and
                SIGTERM then shut it down gracefully). With ``block=False`` return as soon
                as the planner runs, for embedding in an application. The default is
                Databay's: the built-in planners block; a subclass whose ``_start_planner``
                returns at once returns then too.

        Raises:
            PlannerStateError: the planner is not stopped.
        """
        if block is None:
            block = self._blocking_start or self._start_planner_blocks
        with self._state_lock:
            if self._state is not PlannerState.STOPPED:
                raise PlannerStateError(
                    f"{self!r} cannot start: it is {self._state.value}, not stopped"
                )
            self._set_state(PlannerState.STARTING)
            self._start_aborted = False
            self._paused = False
            self._starting_thread = threading.current_thread()
            self._stopped.clear()
        _LOGGER.info("Starting %s", self)
        if block and threading.current_thread() is threading.main_thread():
            # Signals are handled from here on, also while nodes start and the scheduler
            # starts: a service stopped during its own startup still shuts down gracefully.
            self._until_stop_signal(self._start_steps)
        else:
            self._start_steps(block)

    def _start_steps(self, block: bool = True) -> None:
        for link in self.links:
            if self._start_aborted or not self._start_link(link):
                self._abort_start()
                return
        # Immediate transfers run while STARTING: an unignored failure aborts the start here,
        # before any scheduler (possibly a blocking one) is started.
        self._immediate_transfers(self.links)
        if self._start_aborted:
            self._abort_start()
            return
        if self._start_planner_blocks:
            with self._holding_signals():
                self._start_maintenance()
                running = self._enter_running()
            # Such a _start_planner only returns at shutdown: the planner runs from here.
            if not running:
                self._abort_start()
                return
            if block:
                self._start_planner()
            else:
                threading.Thread(
                    target=self._start_planner, name="databay_bus-planner", daemon=True
                ).start()
        else:
            # Still STARTING while the scheduler starts: a shutdown() meanwhile only flags,
            # and we stop the scheduler we just started instead of racing it. The scheduler
            # comes first: its grid is anchored as it starts, and a thread start is 0.1-0.5 ms.
            with self._holding_signals():  # a signal now is raised once RUNNING
                self._start_planner()
                self._start_maintenance()
                running = self._enter_running()
            if not running:
                self._abort_start(scheduler_started=True)
                return
        if block:
            self._stopped.wait()

    def _start_maintenance(self) -> None:
        """Queue retention: purge delivered records on a daemon thread, never in a transfer.
        Queues shared by processes (with a ``watch``) also wake links between ticks."""
        self._maintenance = QueueMaintenance(
            lambda: self.links,
            lambda: self._state is not PlannerState.STOPPED,
            status=lambda: planner_status(self),
            queues=self._link_queues,
        )
        self._maintenance.start()
        for queue in self._maintenance.queues():
            watch = getattr(queue, "watch", None)
            if callable(watch):
                self._unwatch.append(watch(lambda key, queue=queue: self._wake_links(queue, key)))

    def _wake_links(self, queue: object, key: str) -> None:
        """Records of link ``key`` may be due in ``queue``: deliver them now (no pull) on the
        I/O pool, for each of this planner's links on that queue and key that is idle."""
        if self._state is not PlannerState.RUNNING:
            return
        for link in self.links:
            delivery = link._delivery
            if getattr(delivery, "queue", None) is queue and getattr(delivery, "key", None) == key:
                io_pool().submit(self._deliver_now, link)

    def _deliver_now(self, link: Link) -> None:
        """A wake-up's transfer: delivers what is due without pulling; nothing if busy."""
        key = id(link)
        with self._state_lock:
            if (
                self._state is not PlannerState.RUNNING
                or key in self._transferring
                or key in self._unstarted
                or _transfer_running(link)
            ):
                return
            self._transferring[key] = threading.get_ident()
            self._waking.add(key)
        try:
            link._delivery.announce_tick(None, pull=False)  # type: ignore[attr-defined]
            link.transfer()
        except Exception as exc:
            self._on_exception(exc, link)
        finally:
            with self._state_lock:
                self._transferring.pop(key, None)
                self._waking.discard(key)
                self._state_changed.notify_all()

    def _enter_running(self) -> bool:
        """Become RUNNING unless a failure or a shutdown() arrived while starting."""
        with self._state_lock:
            if self._start_aborted:
                return False
            self._set_state(PlannerState.RUNNING)
            if self._paused:  # pause() arrived while starting: apply it now the scheduler runs
                self._pause_scheduler()
        self._observers.emit(PlannerStarted(self))
        return True

    def _set_state(self, state: PlannerState) -> None:
        """Move to ``state``; the caller holds ``_state_lock``."""
        self._state = state
        self._state_changed.notify_all()

    def _abort_start(self, scheduler_started: bool = False) -> None:
        with self._state_lock:
            self._set_state(PlannerState.STOPPING)
        self._wind_down(wait=True, stop_scheduler=scheduler_started, announce=False)

    def _wind_down(
        self, wait: bool, stop_scheduler: bool, announce: bool, timeout: float | None = None
    ) -> None:
        """From STOPPING: stop retention, the scheduler and every link's nodes; end STOPPED.

        With a ``timeout``, the scheduler is stopped without waiting and the transfers in
        flight are given ``timeout`` seconds to end; the ones still running then are left
        to finish (or hang) on their daemon threads.
        """
        bounded = wait and timeout is not None
        self._winding_down = threading.get_ident()
        try:
            self._wind_down_steps(wait, stop_scheduler, announce, timeout, bounded)
        finally:
            self._winding_down = None

    def _wind_down_steps(
        self,
        wait: bool,
        stop_scheduler: bool,
        announce: bool,
        timeout: float | None,
        bounded: bool,
    ) -> None:
        while self._unwatch:
            self._unwatch.pop()()
        if self._maintenance is not None:
            self._maintenance.stop(
                timeout=(min(10.0, timeout or 0.0) if bounded else 10.0) if wait else 0.0
            )
            self._maintenance = None
        if stop_scheduler:
            try:
                self._shutdown_planner(wait and not bounded)
            except Exception as exc:
                _LOGGER.error("%s: stopping the scheduler failed", self, exc_info=exc)
        if wait:  # also transfers a scheduler hook does not know of, or left running earlier
            self._await_transfers(timeout)
        self._unstarted.clear()
        shutdown_links(self.links)  # nodes shared by many links are released in one step
        with self._state_lock:
            self._set_state(PlannerState.STOPPED)
        if announce:
            self._observers.emit(PlannerStopped(self))
        self._stopped.set()

    def _immediate_transfers(self, links: list[Link]) -> None:
        """Run immediate transfers in the calling thread (Databay's way).

        Planners that schedule the first run at once themselves override this with a no-op.
        """
        for link in links:
            if self._is_immediate(link) and not self._start_aborted:
                self._run_transfer(link)

    def _is_immediate(self, link: Link) -> bool:
        """True when ``link`` transfers as the planner starts (planner's and link's flag)."""
        return self.immediate_transfer and link.immediate_transfer

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop scheduling, then shut down every link's nodes. Safe to call more than once.

        On a planner that is not running this still stops its scheduler and calls every
        link's ``on_shutdown`` (as Databay does), so nodes started by hand are shut down.

        Args:
            wait: wait for transfers in flight to end. With ``wait=False`` this returns at
                once even if an outlet hangs; nodes of a link still transferring are shut
                down when its transfer ends.
            timeout: with ``wait``, wait at most this many seconds, then log the links
                still transferring (WARNING) and return as ``wait=False`` would. Records a
                hung transfer had queued stay in its link's queue and are delivered by a
                later transfer (after a restart, too).

        Raises:
            ConfigurationError: a negative, NaN or infinite ``timeout`` (ArgumentTypeError, also
                a TypeError, for a ``timeout`` or ``wait`` of the wrong type); nothing stops.
        """
        owner = type(self).__name__
        wait = as_bool(wait, "wait", owner)
        timeout = optional_seconds(timeout, "timeout", owner)
        self._await_pending_start()
        # A transfer draining a queue's backlog ends after its current chunk, so waiting for
        # it stays short; what it did not push stays queued for the next start.
        if self._queues:  # none: 100,000 plain links are not walked
            _stop_drains(self.links)
        with self._state_lock:
            state = self._state
            if state is PlannerState.STARTING:
                # start() is still running (on another thread, or below us on this one): it
                # sees this flag and shuts the nodes it started down itself.
                self._start_aborted = True
            elif state in (PlannerState.RUNNING, PlannerState.STOPPED):
                self._set_state(PlannerState.STOPPING)
        if state is PlannerState.STARTING:
            if wait and self._starting_thread is not threading.current_thread():
                self._stopped.wait(timeout)
            return
        if state is PlannerState.STOPPING:
            # Another thread (e.g. the planner's own shutdown after an error) is stopping it:
            # wait for that, and for the transfers it did not wait for, unless this thread is
            # part of it (a transfer or a node's on_shutdown calling shutdown()).
            if wait and not self._inside_shutdown():
                started = time.monotonic()
                if self._stopped.wait(timeout):
                    left = None if timeout is None else timeout - (time.monotonic() - started)
                    self._await_transfers(left if left is None else max(0.0, left))
            return
        _LOGGER.info("Shutting down %s", self)
        self._wind_down(
            wait, stop_scheduler=True, announce=state is PlannerState.RUNNING, timeout=timeout
        )

    def _inside_shutdown(self) -> bool:
        """True on a thread that a shutdown in progress may be waiting for: one running a
        transfer of this planner, or the one winding the planner down."""
        me = threading.get_ident()
        with self._state_lock:
            return me in self._transferring.values() or me == self._winding_down

    def _await_transfers(self, timeout: float | None) -> bool:
        """Wait (up to ``timeout`` s; None: as long as it takes) for this planner's transfers
        in flight, except one running on this very thread; False (and a WARNING naming them)
        if some still run."""
        me = threading.get_ident()
        deadline = None if timeout is None else time.monotonic() + timeout

        def others() -> set[int]:
            return {link for link, thread in self._transferring.items() if thread != me}

        with self._state_lock:
            while others():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._state_changed.wait(left)
            hung = others()
        if not hung:
            return True
        names = [_name(link) for link in self.links if id(link) in hung]
        _LOGGER.warning(
            "%s: shutdown timed out after %g s; still transferring: %s. They are left to end "
            "on their own; records they took from a queue stay queued and are delivered later.",
            self,
            timeout,
            ", ".join(names) or f"{len(hung)} removed link(s)",
        )
        return False

    def _await_pending_start(self, timeout: float = 10.0) -> None:
        """Wait for a thread about to run this planner's ``start()`` to begin it.

        Databay documents ``Thread(target=planner.start).start()`` to start without blocking;
        a ``pause()`` or ``shutdown()`` right after it must not find the planner still stopped
        only because that thread has not run yet.
        """
        with self._state_lock:
            if self._state is not PlannerState.STOPPED:
                return
            deadline = time.monotonic() + timeout
            while self._state is PlannerState.STOPPED and self._start_is_pending():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # A thread ending without starting notifies nobody: look again now and then.
                self._state_changed.wait(min(left, 0.05))

    def _start_is_pending(self) -> bool:
        """True when another live thread's target is this planner's ``start`` (it is cleared
        once the target returns, so a thread done with ``start()`` does not count)."""
        current = threading.current_thread()
        for thread in threading.enumerate():
            target = getattr(thread, "_target", None)  # CPython's Thread keeps it until done
            if (
                thread is not current
                and getattr(target, "__self__", None) is self
                and getattr(target, "__name__", None) == "start"
            ):
                return True
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the planner is stopped; False if ``timeout`` seconds passed first."""
        return self._stopped.wait(timeout)

    def _until_stop_signal(self, run: Callable[[], None]) -> None:
        """Call ``run`` in the main thread; SIGINT or SIGTERM meanwhile shut down gracefully."""
        with raise_on_signals() as gate:  # a handler the application set is left alone
            self._signal_gate = gate
            try:
                run()
            except (KeyboardInterrupt, StopSignal) as exc:
                _LOGGER.info("%s: %s received, shutting down", self, type(exc).__name__)
                if self._state is PlannerState.STARTING:
                    self._abort_start()  # the signal interrupted start() before the scheduler
                else:
                    self.shutdown(wait=True, timeout=self.shutdown_timeout)
            finally:
                self._signal_gate = None

    def _holding_signals(self) -> contextlib.AbstractContextManager[None]:
        gate = self._signal_gate
        return contextlib.nullcontext() if gate is None else gate.hold()

    def force_transfer(self) -> None:
        """Run one transfer of every link now, in the calling thread (works when stopped)."""
        for link in self.links:
            try:
                link.transfer()
            except Exception as exc:
                self._on_exception(exc, link)

    def _run_transfer(self, link: Link) -> None:
        """What schedulers call for each tick: ``link.transfer()`` (so a Link subclass's own
        ``transfer`` runs), unless a transfer of that link still runs: then the tick is
        skipped with a WARNING and counted."""
        key = id(link)
        with self._state_lock:
            busy = key in self._transferring or _transfer_running(link)
            if not busy:
                self._transferring[key] = threading.get_ident()
        if busy:
            if key in self._waking:  # a wake-up delivers (it pulls nothing): not a backlog
                _LOGGER.debug("%s: tick skipped while a wake-up delivers", _name(link))
                return
            link.metrics.add_skipped()
            self._skips.note(
                key,
                logging.WARNING,
                "%s: transfer skipped, the previous transfer of this link is still running",
                _name(link),
            )
            return
        self._skips.clear(key)
        try:
            if key in self._unstarted and not self._retry_start(link):
                return
            announce = getattr(link._delivery, "announce_tick", None)
            if announce is not None:  # a queue shared by processes: one of them pulls a tick
                announce(current_tick(link, time.time()))
            link.transfer()
        except Exception as exc:
            self._on_exception(exc, link)
        else:
            self._streaks.succeeded(("transfer", key), f"{_name(link)}: transfer")
        finally:
            with self._state_lock:
                self._transferring.pop(key, None)
                self._state_changed.notify_all()

    def _on_exception(self, exception: BaseException, link: Link | None = None) -> None:
        """Log a failure; unless ignoring exceptions, shut a running planner down.

        When ignoring, a link failing transfer after transfer is logged as one streak (see
        ``databay_bus._streaks``): one traceback, then a line a minute, then its recovery.
        """
        if self.ignore_exceptions and link is not None:
            key = ("transfer", id(link))
            if not self._streaks.failed(
                key, f"{_name(link)}: transfer", exception, log_first=False
            ):
                return  # a repeat of a failure already shown: at most a line a minute
        _LOGGER.error(  # the error's text in the line too, as Databay's report had it
            '%s: %s raised when executing %s: "%s"',
            self,
            type(exception).__name__,
            link,
            exception,
            exc_info=exception,
        )
        if self.ignore_exceptions:
            return
        with self._state_lock:
            state = self._state
            if state is PlannerState.STARTING:
                self._start_aborted = True  # start() aborts once the current step returns
        if state is PlannerState.RUNNING:
            threading.Thread(
                target=self.shutdown, kwargs={"wait": False}, name="databay_bus-shutdown"
            ).start()

    # -- pause and resume (for planners whose scheduler can pause) ---------------------------

    def _request_pause(self, paused: bool, action: str) -> None:
        """Pause or resume now if running; while starting, once the scheduler runs."""
        self._await_pending_start()
        with self._state_lock:
            if self._state not in (PlannerState.STARTING, PlannerState.RUNNING):
                raise PlannerStateError(f"{self!r} cannot {action}: it is {self._state.value}")
            self._paused = paused
            if self._state is PlannerState.RUNNING:
                if paused:
                    self._pause_scheduler()
                else:
                    self._resume_scheduler()

    def _pause_scheduler(self) -> None:
        """Stop starting transfers (called with the state lock held, while running)."""
        raise NotImplementedError(f"{type(self).__name__} cannot pause")

    def _resume_scheduler(self) -> None:
        """Start transferring again (called with the state lock held, while running)."""
        raise NotImplementedError(f"{type(self).__name__} cannot resume")

    # -- observation ------------------------------------------------------------------------

    def add_observer(self, observer: Callable[[Event], None]) -> None:
        """Notify ``observer`` (an Observer or a callable) of this planner's events.

        Observers run on one background thread, in event order; see docs/observers.md.
        """
        self._observers.add(observer)

    def remove_observer(self, observer: Callable[[Event], None]) -> None:
        """Stop notifying ``observer``."""
        self._observers.remove(observer)

    def flush_observers(self, timeout: float | None = None) -> bool:
        """Wait until observers have been told every event so far; False on timeout."""
        return self._observers.flush(timeout)

    def metrics(self) -> dict[str, Any]:
        """Counters per link and outlet, plus queue depths, as a JSON-serialisable dict."""
        links = []
        for link in self.links:
            entry: dict[str, Any] = {"tags": link.tags, **link.metrics.as_dict()}
            queue_stats = getattr(link._delivery, "metrics", None)
            if callable(queue_stats):
                entry["queue"] = queue_stats()
            pulls = getattr(link, "_pulls", None)
            if pulls is not None:
                entry["pulls"] = pulls.metrics()
            links.append(entry)
        return {"planner": type(self).__name__, "state": self._state.value, "links": links}

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> BasePlanner:
        self.start(block=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True, timeout=self.shutdown_timeout)

    # -- scheduler hooks --------------------------------------------------------------------

    @abc.abstractmethod
    def _schedule(self, link: Link) -> None:
        """Begin running ``self._run_transfer(link)`` every ``link.interval``."""

    def _schedule_many(self, links: list[Link]) -> None:
        """Schedule the links of one ``add_links`` call; a scheduler may batch them."""
        for link in links:
            self._schedule(link)

    @abc.abstractmethod
    def _unschedule(self, link: Link) -> None:
        """Stop running ``link``; call ``link.set_job(None)``."""

    @abc.abstractmethod
    def _start_planner(self) -> None:
        """Start the scheduler."""

    @abc.abstractmethod
    def _shutdown_planner(self, wait: bool = True) -> None:
        """Stop the scheduler; with ``wait``, after transfers in flight have ended."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(links={len(self._links)}, state={self._state.value})"


_LOCK_TYPE = type(threading.Lock())


def _name(link: Link) -> str:
    """How logs name a link: its tags joined by dots, else its repr."""
    tags = link.tags
    return ".".join(tags) if isinstance(tags, list) and tags else repr(link)


def _stop_drains(links: Sequence[Link]) -> None:
    """Tell queued links' transfers to take no further chunk of a backlog."""
    for link in links:
        stop = getattr(link._delivery, "stop_drains", None)
        if stop is not None:
            stop()


def _transfer_running(link: Link) -> bool:
    """True while a transfer of ``link`` runs anywhere (e.g. a force_transfer)."""
    lock = getattr(link, "_transfer_lock", None)
    return isinstance(lock, _LOCK_TYPE) and lock.locked()


def _deprecated_catch_exceptions(catch_exceptions: bool | None, ignore_exceptions: bool) -> bool:
    """Map Databay's deprecated ``catch_exceptions`` onto ``ignore_exceptions``."""
    if catch_exceptions is None:
        return ignore_exceptions
    warnings.warn(
        "catch_exceptions is deprecated; use ignore_exceptions instead",
        DeprecationWarning,
        stacklevel=3,
    )
    return catch_exceptions
