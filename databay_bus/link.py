"""Link: one transfer is pull, process, admit (queue/route/group), push.

A transfer runs in one of two drivers that share every step but the waiting:

* ``_run_sync``: when every inlet and outlet is synchronous, no event loop exists at all;
  several inlets run side by side on the shared I/O thread pool; outlets' lanes run on the
  calling thread while they are quick and on the pool once one proves slow
  (``_concurrency.run_isolated``).
* ``_run_async``: when any node is ``async def``, the transfer is a coroutine; synchronous
  nodes run on the I/O pool so they never block the loop the asynchronous ones share.

Between pull and push sits a *delivery* (the ``databay_bus.delivery`` package): the direct
one groups and copies records for each outlet, the queued one stores them durably and hands
each outlet its due records. Each outlet is a *lane* that pushes its batches in order; lanes
run concurrently, so a slow or failing outlet neither delays nor cancels the others.
``Update`` lives in ``databay_bus.update`` and is importable from here too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec

from databay_bus._concurrency import (
    gather_results,
    off_loop,
    run_coroutine,
    run_isolated,
    run_parallel,
)
from databay_bus._node import Node
from databay_bus._progress import LaneProgress
from databay_bus._streaks import FailureStreaks
from databay_bus._validation import (
    as_bool,
    as_callables,
    as_list,
    as_tags,
    coerce_interval,
    positive_int,
)
from databay_bus.cursors import SourceSide, enter_pull, leave_pull
from databay_bus.delivery.base import Lane, Outcome
from databay_bus.delivery.direct import DirectDelivery
from databay_bus.errors import (
    ArgumentTypeError,
    ConfigurationError,
    CursorError,
    InvalidNodeError,
    MissingNodeError,
    TransferError,
    describe,
)
from databay_bus.inlets.base import Inlet, wrap_pulled
from databay_bus.metrics import LinkMetrics
from databay_bus.observers import Event, TransferCompleted, TransferFailed, TransferStarted
from databay_bus.outlets.base import Outlet
from databay_bus.queue.cursors import ANY_VERSION, CursorWrite, StoredCursor, encode_cursor
from databay_bus.records import Record
from databay_bus.routing import Router
from databay_bus.schedules import Cron, IntervalSchedule, Schedule
from databay_bus.update import Grouper, Processor, Update

if TYPE_CHECKING:
    from typing import Concatenate

    from databay_bus._pulls import PullRetries
    from databay_bus.delivery.base import Delivery
    from databay_bus.queue.base import RecordQueue
    from databay_bus.queue.retry import RetryPolicy

__all__ = ["Grouper", "Link", "Processor", "Update", "shutdown_links"]

_LOGGER = logging.getLogger(__name__)
#: Ignored node failures that repeat: one traceback per streak (see databay_bus._streaks).
_NODE_STREAKS = FailureStreaks(_LOGGER)

P = ParamSpec("P")


class _Run:
    """The state of one transfer while it runs."""

    __slots__ = ("errors", "failures", "pulled", "pushed", "started", "update")

    def __init__(self, update: Update, started: float) -> None:
        self.update = update
        self.started = started
        self.pulled = 0
        self.errors: list[Exception] = []
        self.pushed: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    def lane_done(self, outlet: str, pushed: int, failures: int) -> None:
        # Lanes run on several threads; each writes only its own keys.
        self.pushed[outlet] = self.pushed.get(outlet, 0) + pushed
        if failures:
            self.failures[outlet] = self.failures.get(outlet, 0) + failures


class Link:
    """Moves records from its inlets to its outlets, once per ``interval`` under a planner.

    Args:
        inlets: an Inlet or a list of them.
        outlets: an Outlet or a list of them.
        interval: time between transfers, a ``timedelta`` or seconds (int or float), > 0;
            or a :class:`~databay_bus.schedules.Cron` schedule (see docs/schedules.md).
        tags: a string or list of strings naming the link (shown in logs and updates).
        copy_records: give every outlet its own copy of the records, so one outlet's changes
            never reach another.
        ignore_exceptions: log a failing inlet, processor, grouper or outlet and carry on with
            the rest of the transfer, instead of raising once the transfer has finished.
        inlet_concurrency: at most this many inlets pull at the same time.
        immediate_transfer: run a transfer as soon as the planner starts (if the planner's own
            ``immediate_transfer`` is also True), instead of after the first interval.
        processors: callables ``list[Record] -> list[Record]`` run in order on all records.
        groupers: callables ``list[list[Record]] -> list[list[Record]]``; each resulting batch
            is pushed separately.
        queue: a :class:`~databay_bus.queue.RecordQueue` that stores records before any
            outlet sees them (see docs/queue.md).
        router: a :class:`~databay_bus.routing.Router` choosing which outlets get each
            record (see docs/routing.md); outlet names must then be unique.
        pull_retry: a :class:`~databay_bus.queue.RetryPolicy` for every inlet's pulls: a
            failed pull is retried with backoff (within the transfer, or at a later tick)
            instead of failing the transfer (see docs/production.md). None: Databay's way.
        inlet_retry: ``{inlet name: RetryPolicy}`` overriding ``pull_retry`` per inlet.
        name, catch_exceptions: deprecated Databay spellings of ``tags`` and
            ``ignore_exceptions``.

    Raises:
        InvalidNodeError: an inlet/outlet is not one, or appears twice.
        ConfigurationError: a bad interval, tags, processors, groupers or concurrency; an
            ``ArgumentTypeError`` (also a ``TypeError``) when its type is wrong, e.g. a string
            for one of the flags, which must be real bools.
    """

    # Slots: a planner may hold tens of thousands of links. ``__dict__`` is among them so users
    # may set attributes of their own (as on Databay's links); it is made on first use only.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_all_sync",
        "_delivery",
        "_failing",
        "_home",
        "_in_flight",
        "_inlets",
        "_interval",
        "_job",
        "_listeners",
        "_nodes_lock",
        "_outlets",
        "_pulls",
        "_release_after_transfer",
        "_slow_outlets",
        "_started",
        "_state_lock",
        "_tags",
        "_transfer_lock",
        "_transfer_number",
        "copy_records",
        "groupers",
        "ignore_exceptions",
        "immediate_transfer",
        "inlet_concurrency",
        "metrics",
        "processors",
        "router",
    )

    def __init__(
        self,
        inlets: Inlet | Sequence[Inlet],
        outlets: Outlet | Sequence[Outlet],
        interval: timedelta | float | Cron,
        tags: str | Sequence[str] | None = None,
        copy_records: bool = True,
        ignore_exceptions: bool = False,
        catch_exceptions: bool | None = None,
        inlet_concurrency: int = 9999,
        immediate_transfer: bool = True,
        processors: Processor | Sequence[Processor] | None = None,
        groupers: Grouper | Sequence[Grouper] | None = None,
        name: str | None = None,
        queue: RecordQueue | None = None,
        router: Router | None = None,
        pull_retry: RetryPolicy | None = None,
        inlet_retry: Mapping[str, RetryPolicy] | None = None,
        **delivery_options: Any,
    ) -> None:
        if name is not None:
            warnings.warn(
                "Link(name=...) is deprecated; use tags=... instead",
                DeprecationWarning,
                stacklevel=2,
            )
            tags = [name] if tags is None else [name, *as_tags(tags, "Link")]
        if catch_exceptions is not None:
            warnings.warn(
                "Link(catch_exceptions=...) is deprecated; use ignore_exceptions=... instead",
                DeprecationWarning,
                stacklevel=2,
            )
            ignore_exceptions = catch_exceptions
        self._tags = as_tags(tags, "Link")
        self._interval: timedelta | Cron = (
            interval
            if isinstance(interval, Cron)
            else coerce_interval(
                interval,
                f"Link(tags:{self._tags})",
                "a timedelta, a number of seconds or a Cron",
            )
        )
        owner = f"Link(tags:{self._tags})"
        self.copy_records = as_bool(copy_records, "copy_records", owner)
        self.ignore_exceptions = as_bool(ignore_exceptions, "ignore_exceptions", owner)
        self.inlet_concurrency = positive_int(inlet_concurrency, "inlet_concurrency", owner)
        self.immediate_transfer = as_bool(immediate_transfer, "immediate_transfer", owner)
        self.processors: list[Processor] = as_callables(processors, "processors", self)
        self.groupers: list[Grouper] = as_callables(groupers, "groupers", self)
        self._inlets: tuple[Inlet, ...] = ()
        self._outlets: tuple[Outlet, ...] = ()
        self._all_sync = True
        self._home: Callable[[], asyncio.AbstractEventLoop] | None = None
        self._nodes_lock = threading.RLock()
        self._transfer_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._transfer_number = -1
        self._started = False
        self._in_flight = False
        self._release_after_transfer = False
        self._job: Any = None
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        # Outlets whose lane proved slow: they start on a thread (see run_isolated). Made by the
        # first transfer: an empty set is 216 B, and a planner may hold 100,000 links.
        self._slow_outlets: set[Hashable] | None = None
        self.metrics = LinkMetrics()
        if router is not None and not isinstance(router, Router):
            raise ConfigurationError(
                f"{self}: router must be a databay_bus.routing.Router, got {describe(router)}"
            )
        self.router = router
        self._failing: dict[int, str] | None = None  # ignored nodes failing: id -> name
        self._pulls: PullRetries | None = None
        if pull_retry is not None or inlet_retry:
            from databay_bus._pulls import PullRetries

            self._pulls = PullRetries(self, pull_retry, inlet_retry)
        self._delivery: Delivery = DirectDelivery(self)
        self.add_inlets(inlets)
        if self._pulls is not None:
            self._pulls.check_inlets(self._inlets)
        self.add_outlets(outlets)
        if queue is not None or delivery_options:
            from databay_bus.delivery.queued import QueueDelivery

            if queue is None:
                raise ConfigurationError(
                    f"{self}: {', '.join(sorted(delivery_options))}: only for a queued link; "
                    f"pass queue=... (a databay_bus.queue.RecordQueue)"
                )

            self._delivery = QueueDelivery(self, queue, **delivery_options)

    # -- properties -------------------------------------------------------------------------

    @property
    def inlets(self) -> list[Inlet]:
        """The link's inlets (a new list; change them with add_inlets/remove_inlets)."""
        return list(self._inlets)

    @property
    def outlets(self) -> list[Outlet]:
        """The link's outlets (a new list; change them with add_outlets/remove_outlets)."""
        return list(self._outlets)

    @property
    def interval(self) -> timedelta | Cron:
        """Time between two transfers (a timedelta); for a cron link, its ``Cron``."""
        return self._interval

    @property
    def schedule(self) -> Schedule:
        """When the link fires: its ``Cron``, or an ``IntervalSchedule`` of its interval on
        the grid anchored at the Unix epoch (the one all processes share; the built-in
        planners anchor an interval link's grid when they schedule it, as Databay does)."""
        interval = self._interval
        return interval if isinstance(interval, Cron) else IntervalSchedule(interval)

    @property
    def tags(self) -> list[str]:
        """The link's tags."""
        return list(self._tags)

    @property
    def name(self) -> str:
        """Deprecated: the first tag, or ``''``."""
        warnings.warn("Link.name is deprecated; use Link.tags", DeprecationWarning, stacklevel=2)
        return self._tags[0] if self._tags else ""

    @property
    def job(self) -> Any:
        """The planner's job object for this link, or None when it is not scheduled."""
        return self._job

    def set_job(self, job: Any) -> None:
        """Record the planner's job for this link (called by planners)."""
        self._job = job

    @property
    def queue(self) -> RecordQueue | None:
        """The link's record queue, or None."""
        queue: RecordQueue | None = getattr(self._delivery, "queue", None)
        return queue

    # -- inlet cursors (docs/cursors.md) ----------------------------------------------------

    def cursor(self, inlet: str) -> StoredCursor | None:
        """The committed cursor of this link's inlet named ``inlet``, or None.

        Raises:
            MissingNodeError: the link has no inlet of that name (ArgumentTypeError: not a str).
        """
        return self._delivery.read_cursor(self._inlet_name(inlet))

    def _inlet_name(self, inlet: Any) -> str:
        """``inlet`` if it names one of this link's inlets (cursors are kept by inlet name)."""
        if not isinstance(inlet, str):
            raise ArgumentTypeError(
                f"{self}: an inlet name must be a string, got {describe(inlet)}"
            )
        names = [node.name for node in self._inlets]
        if inlet not in names:
            raise MissingNodeError(
                f"{self}: no inlet named {describe(inlet)}; its inlets: "
                f"{', '.join(map(repr, names)) or 'none'}"
            )
        return inlet

    def set_cursor(self, inlet: str, value: Any) -> None:
        """Set the cursor of the inlet named ``inlet`` (an operator's override).

        Raises:
            CursorError: ``value`` is not JSON-storable, or the link runs (it is scheduled or
                transferring): pause it first, so no pull overwrites the change.
            MissingNodeError: the link has no inlet of that name (ArgumentTypeError: not a str).
        """
        inlet = self._inlet_name(inlet)
        text = encode_cursor(value, f"{self}: inlet {inlet!r}")
        self._write_cursor(inlet, text, f"set the cursor of inlet {inlet!r} to {describe(value)}")

    def reset_cursor(self, inlet: str) -> None:
        """Forget the cursor of the inlet named ``inlet``: its next pull starts from None.

        Raises:
            CursorError: the link runs (scheduled or transferring); pause it first.
            MissingNodeError: the link has no inlet of that name (ArgumentTypeError: not a str).
        """
        inlet = self._inlet_name(inlet)
        self._write_cursor(inlet, None, f"reset the cursor of inlet {inlet!r}")

    def _write_cursor(self, inlet: str, text: str | None, what: str) -> None:
        if self._job is not None or not self._transfer_lock.acquire(blocking=False):
            raise CursorError(
                f"{self}: cannot {what} while the link runs (scheduled or transferring); "
                f"pause it first"
            )
        try:
            self._delivery.commit_cursors({inlet: CursorWrite(text, ANY_VERSION)})
        finally:
            self._transfer_lock.release()

    @property
    def transfer_number(self) -> int:
        """Number of the last transfer started, -1 before the first."""
        return self._transfer_number

    # -- nodes ------------------------------------------------------------------------------

    def add_inlets(self, inlets: Inlet | Sequence[Inlet]) -> None:
        """Add inlets; started at once if the link is running. All or nothing."""
        with self._nodes_lock:
            added = self._checked_new(as_list(inlets), Inlet, self._inlets, "inlets")
            self._inlets = (*self._inlets, *added)
            self._nodes_changed(added, [])

    def remove_inlets(self, inlets: Inlet | Sequence[Inlet]) -> None:
        """Remove inlets; shut down if no other running link holds them. All or nothing."""
        with self._nodes_lock:
            removed = self._checked_present(as_list(inlets), self._inlets, "inlets")
            self._inlets = tuple(i for i in self._inlets if i not in removed)
            self._nodes_changed([], removed)

    def add_outlets(self, outlets: Outlet | Sequence[Outlet]) -> None:
        """Add outlets; started at once if the link is running. All or nothing."""
        with self._nodes_lock:
            added = self._checked_new(as_list(outlets), Outlet, self._outlets, "outlets")
            self._delivery.check_outlets([*self._outlets, *added])
            self._outlets = (*self._outlets, *added)
            self._nodes_changed(added, [])

    def remove_outlets(self, outlets: Outlet | Sequence[Outlet]) -> None:
        """Remove outlets; shut down if no other running link holds them. All or nothing."""
        with self._nodes_lock:
            removed = self._checked_present(as_list(outlets), self._outlets, "outlets")
            remaining = [o for o in self._outlets if o not in removed]
            self._delivery.check_outlets(remaining)
            self._outlets = tuple(remaining)
            self._nodes_changed([], removed)

    def _checked_new(
        self, nodes: list[Any], kind: type, present: tuple[Any, ...], what: str
    ) -> list[Any]:
        seen: list[Any] = []
        for index, node in enumerate(nodes):
            if not isinstance(node, kind):
                raise InvalidNodeError(
                    f"{self}: {what}[{index}] must be an {kind.__name__} instance, "
                    f"got {describe(node)}"
                )
            if not isinstance(node, Node) or not node._check_initialised():
                raise InvalidNodeError(
                    f"{self}: {what}[{index}] {type(node).__name__} was not initialised; "
                    f"call super().__init__() in its __init__"
                )
            if any(node is other for other in (*present, *seen)):
                raise InvalidNodeError(f"{self}: {what}[{index}] {node!r} is already in the link")
            seen.append(node)
        return seen

    def _checked_present(self, nodes: list[Any], present: tuple[Any, ...], what: str) -> list[Any]:
        for index, node in enumerate(nodes):
            if not any(node is other for other in present):
                raise MissingNodeError(f"{self}: {what}[{index}] {node!r} is not in the link")
        return nodes

    def _nodes_changed(self, added: list[Any], removed: list[Any]) -> None:
        async_nodes = [
            *(i for i in self._inlets if i._pull_is_async),
            *(o for o in self._outlets if o._push_is_async),
        ]
        self._all_sync = not async_nodes
        homes = {node._get_home_loop for node in async_nodes}
        self._home = homes.pop() if len(homes) == 1 else None
        if self._started:
            for node in added:
                node.try_start(self)
            for node in removed:
                node.try_shutdown(self)

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        """Start every inlet and outlet that is not already running (planners call this).

        A node shared with another running link is not started twice. If a node fails to start
        and the link does not ignore exceptions, the nodes this call started are shut down
        again and the error is raised.
        """
        with self._nodes_lock:
            with self._state_lock:
                self._release_after_transfer = False
                if self._started:
                    return
                self._started = True
            started = []
            for node in (*self._inlets, *self._outlets):
                try:
                    node.try_start(self)
                    started.append(node)
                except Exception as exc:
                    if self.ignore_exceptions:
                        _LOGGER.exception(
                            '%s: on_start of %r failed; ignored. on_start %s exception: "%s"',
                            self,
                            node,
                            _kind(node),
                            exc,
                        )
                        continue
                    self._started = False
                    for other in started:
                        self._shutdown_node(other)
                    raise

    def on_shutdown(self) -> None:
        """Shut down every node no other running link still holds (planners call this).

        If a transfer is in flight, the nodes are shut down as soon as it ends. Every node gets
        its turn even when one fails; the first failure is raised afterwards unless ignored.
        """
        if self._detach():
            self._release_nodes(raise_errors=not self.ignore_exceptions)

    def _detach(self) -> bool:
        """Mark the link stopped. True when its nodes are to be released now; False when it
        was not running, or when the transfer in flight releases them as it ends."""
        with self._state_lock:
            if not self._started:
                return False
            self._started = False
            if self._in_flight:
                self._release_after_transfer = True
                return False
        return True

    def _release_nodes(self, raise_errors: bool) -> None:
        # A plain loop: planners release tens of thousands of links at shutdown.
        with self._nodes_lock:
            nodes = (*self._inlets, *self._outlets)
        first: Exception | None = None
        for node in nodes:
            error = self._shutdown_node(node)
            if first is None:
                first = error
        if first is not None and raise_errors:
            raise first

    def _shutdown_node(self, node: Any) -> Exception | None:
        try:
            node.try_shutdown(self)
        except Exception as exc:
            _LOGGER.error(
                '%s: on_shutdown of %r failed. on_shutdown %s exception: "%s"',
                self,
                node,
                _kind(node),
                exc,
                exc_info=exc,
            )
            return exc
        return None

    # -- transfers --------------------------------------------------------------------------

    def transfer(self) -> None:
        """Run one transfer now, from synchronous code; waits for one already running.

        Works in any thread, including one whose event loop is running. Raises the first
        failure (or a :class:`TransferError` holding several) unless ``ignore_exceptions``.
        """
        with self._transfer_lock:
            self._enter_flight()
            try:
                if self._all_sync:
                    self._run_sync()
                else:
                    run_coroutine(self._run_async(), self._home)
            finally:
                self._leave_flight()

    async def transfer_async(self) -> None:
        """Run one transfer now, inside the running event loop.

        Cancelling the call never leaves the link locked: a sync-only transfer already handed
        to a worker thread finishes there, and a lock acquired after cancellation is released.
        """
        if self._all_sync:
            await asyncio.shield(off_loop(self.transfer))
            return
        await _acquire_off_loop(self._transfer_lock)
        try:
            await self._run_async_guarded()
        finally:
            self._transfer_lock.release()

    async def _run_async_guarded(self) -> None:
        self._enter_flight()
        try:
            await self._run_async()
        finally:
            self._leave_flight()

    def _enter_flight(self) -> None:
        with self._state_lock:
            self._in_flight = True

    def _leave_flight(self) -> None:
        with self._state_lock:
            self._in_flight = False
            release = self._release_after_transfer
            self._release_after_transfer = False
        if release:
            self._release_nodes(raise_errors=False)

    def _begin(self) -> _Run:
        self._transfer_number += 1
        update = Update(self._tags, self._transfer_number)
        if _LOGGER.isEnabledFor(logging.DEBUG):  # one call instead of two when it is not
            _LOGGER.debug("%s transfer", update)
        if self._listeners:
            self._emit(TransferStarted(self, update))
        return _Run(update, time.monotonic())

    def _run_sync(self) -> None:
        run = self._begin()
        inlets, outlets, delivery = self._inlets, self._outlets, self._delivery
        source: SourceSide | None = None
        try:
            records: list[Record] = []
            if delivery.may_pull(run.update):
                source = SourceSide(run.update, delivery)
                pulls = self._pulls
                pulled: list[list[Record] | BaseException]
                if pulls is None and len(inlets) == 1:  # no calls to build: ~1 us of 7 (issue 19)
                    try:
                        pulled = [_pull_sync(inlets[0], source)]
                    except Exception as exc:
                        pulled = [exc]
                else:
                    calls: list[Callable[[], list[Record]]] = [
                        functools.partial(_pull_sync, inlet, source) for inlet in inlets
                    ]
                    if pulls is not None:
                        calls = [
                            functools.partial(pulls.pull_sync, inlet, run.update, call)
                            for inlet, call in zip(inlets, calls, strict=True)
                        ]
                    pulled = run_parallel(calls, self.inlet_concurrency)
                for inlet, result in zip(inlets, pulled, strict=True):
                    source.done(inlet, result)
                    self._collect(inlet, result, records, run)
                if source.quiet:
                    source = None
            run.pulled = len(records)
            records = self._process(records, run.update)
            if source is None:
                lanes = delivery.admit(records, outlets, run.update)
            else:
                lanes = delivery.admit(records, outlets, run.update, source)
                if delivery.safe_on_admit:
                    safe, source = source, None
                    safe.notify(None)
            if len(lanes) == 1:  # nothing to isolate it from
                self._push_lane_sync(run, lanes[0])
            elif lanes:
                slow = self._slow_outlets
                if slow is None:
                    slow = self._slow_outlets = set()
                push = functools.partial(self._push_lane_sync, run)
                _raise_first(run_isolated(push, lanes, slow, _lane_outlet))
        except Exception as exc:
            run.errors.append(exc)
        if source is not None:
            error = self._commit_source(source, run)
            source.notify(error)
        self._finish(run)

    def _commit_source(self, source: SourceSide, run: _Run) -> BaseException | None:
        """Without a safe admit: commit the cursors if every outlet took the records; return
        why the records are not safe otherwise."""
        if run.errors:
            return run.errors[0]
        if run.failures:
            return TransferError(
                f"{run.update}: outlet(s) {', '.join(sorted(run.failures))} failed", []
            )
        try:
            self._delivery.commit_cursors(source.cursors())
        except Exception as exc:
            run.errors.append(exc)
            return exc
        return None

    async def _run_async(self) -> None:
        # Every await below is a real wait: non-blocking delivery steps are plain calls, and
        # one inlet or one lane is awaited directly, without a gather (each coroutine layer
        # costs about a microsecond, a tenth of a whole transfer).
        run = self._begin()
        inlets, outlets, delivery = self._inlets, self._outlets, self._delivery
        source: SourceSide | None = None
        try:
            records: list[Record] = []
            if delivery.blocking:
                may_pull = await off_loop(delivery.may_pull, run.update)
            else:
                may_pull = delivery.may_pull(run.update)
            results: list[list[Record] | BaseException] = []
            if may_pull:
                source = SourceSide(run.update, delivery)
            if source is not None and self._pulls is not None:
                results = await self._pull_retrying(inlets, source)
            elif source is not None:
                if len(inlets) == 1:
                    token = enter_pull(source, inlets[0])
                    try:
                        pulled = await _pull_value(inlets[0], source)
                        results = [wrap_pulled(inlets[0], pulled)]
                    except Exception as exc:
                        results = [exc]
                    finally:
                        leave_pull(token)
                else:
                    gate = (
                        asyncio.Semaphore(self.inlet_concurrency)
                        if self.inlet_concurrency < len(inlets)
                        else None
                    )
                    results = await gather_results(
                        [_pull_gated(inlet, source, gate) for inlet in inlets]
                    )
            if source is not None:
                for inlet, result in zip(inlets, results, strict=True):
                    source.done(inlet, result)
                    self._collect(inlet, result, records, run)
                if source.quiet:
                    source = None
            run.pulled = len(records)
            records = self._process(records, run.update)
            admit: Callable[..., list[Lane]] = delivery.admit
            args = (
                (records, outlets, run.update)
                if source is None
                else (
                    records,
                    outlets,
                    run.update,
                    source,
                )
            )
            if delivery.blocking:
                lanes = await off_loop(admit, *args)
            else:
                lanes = admit(*args)
            if source is not None and delivery.safe_on_admit:
                safe, source = source, None
                await safe.notify_async(None)
            if len(lanes) == 1:
                await self._push_lane_async(lanes[0], run)
            else:
                _raise_first(
                    await gather_results([self._push_lane_async(la, run) for la in lanes])
                )
        except Exception as exc:
            run.errors.append(exc)
        if source is not None:
            if delivery.blocking:
                error = await off_loop(self._commit_source, source, run)
            else:
                error = self._commit_source(source, run)
            await source.notify_async(error)
        self._finish(run)

    async def _pull_retrying(
        self, inlets: Sequence[Inlet], source: SourceSide
    ) -> list[list[Record] | BaseException]:
        """Every inlet's pull under the link's pull retry policies (``_pulls``)."""
        pulls = self._pulls
        assert pulls is not None
        gate = (
            asyncio.Semaphore(self.inlet_concurrency)
            if self.inlet_concurrency < len(inlets)
            else None
        )
        return await gather_results(
            [
                pulls.pull_async(
                    inlet,
                    source.update,
                    functools.partial(_pull_gated, inlet, source, gate),
                )
                for inlet in inlets
            ]
        )

    def _collect(
        self,
        inlet: Inlet,
        result: list[Record] | BaseException,
        records: list[Record],
        run: _Run,
    ) -> None:
        if isinstance(result, list):
            records.extend(result)
            if self._failing is not None:
                self._node_ok(inlet, run)
        elif isinstance(result, Exception):
            self._failed(run, result, "inlet", inlet)
        else:
            raise result

    def _failed(self, run: _Run, exc: Exception, kind: str, node: Node) -> None:
        if self.ignore_exceptions:
            # The same node failing transfer after transfer is one streak: its first failure
            # (and one of a new exception type) in full, then a line a minute, then its end.
            what = f"{'.'.join(self._tags) or 'link'}: {kind} {node!r}"
            with self._state_lock:
                failing = self._failing = self._failing or {}
                failing[id(node)] = what
            if not _NODE_STREAKS.failed((id(self), id(node)), what, exc, log_first=False):
                return
            # Ends with Databay's wording ('Outlet exception: "..."'), which users grep for.
            _LOGGER.error(
                '%s: %s %r failed; ignored. %s exception: "%s"',
                run.update,
                kind,
                node,
                kind.capitalize(),
                exc,
                exc_info=exc,
            )
        else:
            run.errors.append(exc)

    def _node_ok(self, node: Node, run: _Run) -> None:
        """A node that was failing (ignored) worked again: log the end of its streak."""
        with self._state_lock:
            failing = self._failing
            what = None if failing is None else failing.pop(id(node), None)
            if failing is not None and not failing:
                self._failing = None
        if what is not None:
            _NODE_STREAKS.succeeded((id(self), id(node)), what)

    def _process(self, records: list[Record], update: Update) -> list[Record]:
        if not self.processors:
            return records
        result: list[Record] = self._apply_stages(
            "processor", self.processors, records, update, "a list of records", _is_list
        )
        return result

    def group(self, records: list[Record], update: Update) -> list[list[Record]]:
        """Apply the link's groupers to ``[records]`` and return the batches to push."""
        if not self.groupers:
            return [records]
        result: list[list[Record]] = self._apply_stages(
            "grouper", self.groupers, [records], update, "a list of lists of records", _is_batches
        )
        return result

    def _apply_stages(
        self,
        kind: str,
        stages: Sequence[Callable[[Any], Any]],
        value: Any,
        update: Update,
        expected: str,
        valid: Callable[[Any], bool],
    ) -> Any:
        """Feed ``value`` through ``stages`` in order. A stage that raises or returns something
        not ``valid`` fails the transfer, or, under ``ignore_exceptions``, is logged and its
        input passed on unchanged."""
        for stage in stages:
            try:
                result = stage(value)
                if not valid(result):
                    raise ConfigurationError(
                        f"{self}: {kind} {stage!r} must return {expected}, got {describe(result)}"
                    )
                value = result
            except Exception as exc:
                if not self.ignore_exceptions:
                    raise
                _LOGGER.error(
                    '%s: %s %r failed; its input passed on unchanged. %s exception: "%s"',
                    update,
                    kind,
                    stage,
                    kind.capitalize(),
                    exc,
                    exc_info=exc,
                )
        return value

    def _push_lane_sync(self, run: _Run, lane: Lane) -> None:
        # Index loop: a delivery may insert batches (e.g. halves of a failed one) at lane.done.
        outlet, pushed, failures, batches = lane.outlet, 0, 0, lane.batches
        progress = self._progress(lane, run)
        while lane.done < len(batches):
            batch = batches[lane.done]
            lane.done += 1
            try:
                count = _push_sync(outlet, batch, run.update)
            except Exception as exc:
                failures += len(batch)
                if self._settle_failure(lane, batch, exc, run):
                    break
            else:
                pushed += count
                self._delivery.settle(lane, batch, None)
                if self._failing is not None:
                    self._node_ok(outlet, run)
                if progress is not None:
                    progress.batch_done(count, lane)
        run.lane_done(outlet.name, pushed, failures)

    def _progress(self, lane: Lane, run: _Run) -> LaneProgress | None:
        """Progress lines for a lane of several batches, or one that may grow (a backlog
        drain; see ``databay_bus._progress``)."""
        if len(lane.batches) < 2 and not lane.grows:
            return None
        return LaneProgress(run.update, lane.outlet.name, self._delivery.waiting, lane.grows)

    async def _push_lane_async(
        self, lane: Lane, run: _Run
    ) -> None:
        outlet, pushed, failures, batches = lane.outlet, 0, 0, lane.batches
        settle, blocking = self._delivery.settle, self._delivery.blocking
        progress = self._progress(lane, run)
        while lane.done < len(batches):
            batch = batches[lane.done]
            lane.done += 1
            try:
                if outlet._push_is_async:
                    processed = outlet._process(batch)
                    await outlet.push(processed, run.update)
                    count = len(processed)
                else:
                    push = functools.partial(_push_sync, outlet, batch, run.update)
                    count = await off_loop(push)
            except Exception as exc:
                failures += len(batch)
                settle_failure = functools.partial(self._settle_failure, lane, batch, exc, run)
                stop = (
                    await off_loop(settle_failure)
                    if blocking
                    else settle_failure()
                )
                if stop:
                    break
            else:
                pushed += count
                if self._failing is not None:
                    self._node_ok(outlet, run)
                if blocking:
                    await off_loop(settle, lane, batch, None)
                else:
                    settle(lane, batch, None)
                if progress is not None:
                    progress.batch_done(count, lane)
        run.lane_done(outlet.name, pushed, failures)

    def _settle_failure(self, lane: Lane, batch: list[Record], exc: Exception, run: _Run) -> bool:
        """Let the delivery handle a failed push; True when the lane must stop."""
        outcome = self._delivery.settle(lane, batch, exc)
        if outcome is Outcome.ESCALATE:
            self._failed(run, exc, "outlet", lane.outlet)
            return not self.ignore_exceptions
        return outcome is Outcome.STOP

    def _finish(self, run: _Run) -> None:
        update, errors = run.update, run.errors
        duration = time.monotonic() - run.started
        self.metrics.add_transfer(
            run.pulled, run.pushed, run.failures, duration, time.time(), bool(errors)
        )
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("%s done", update)
        if self._listeners:
            pushed = dict(run.pushed)
            self._emit(TransferCompleted(self, update, run.pulled, pushed, duration, bool(errors)))
        if not errors:
            return
        error: Exception = errors[0]
        if len(errors) > 1:
            error = TransferError(
                f"{update}: {len(errors)} nodes failed: "
                + "; ".join(f"{type(e).__name__}: {e}" for e in errors),
                errors,
            )
        if self._listeners:
            self._emit(TransferFailed(self, update, error))
        raise error

    # -- observers --------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` for this link's events (planners register themselves)."""
        with self._nodes_lock:
            self._listeners = (*self._listeners, listener)

    def _listen(self, listeners: tuple[Callable[[Event], None], ...]) -> None:
        """:meth:`add_listener` for a planner, which passes one tuple to all its links: a link
        with no other listener keeps that tuple itself (48 B less per link)."""
        with self._nodes_lock:
            self._listeners = (*self._listeners, *listeners) if self._listeners else listeners

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        """Stop calling ``listener``."""
        with self._nodes_lock:
            # == not "is": a bound method is a new object at every attribute access
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def emit(
        self, event: Callable[Concatenate[Link, P], Event], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Tell this link's listeners ``event(self, *args, **kwargs)``, e.g.
        ``link.emit(DeliveryFailed, outlet, count, error)``; builds nothing when no one listens.
        """
        if self._listeners:
            self._emit(event(self, *args, **kwargs))

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    def __repr__(self) -> str:
        return (
            f"Link(tags:{self._tags}, interval:{getattr(self, '_interval', None)}, "
            f"inlets:{list(getattr(self, '_inlets', ()))}, "
            f"outlets:{list(getattr(self, '_outlets', ()))})"
        )


def shutdown_links(links: Sequence[Link]) -> None:
    """``on_shutdown`` for many links at once, as a planner stopping does.

    A node shared by many of the links is released from all of them in one step instead of
    one locked step per link (10,000 links sharing an outlet: ~1 us per link instead of ~3).
    Failures are logged, not raised; links whose transfer is in flight release their nodes
    when it ends, as with ``on_shutdown``.
    """
    held: dict[int, tuple[Node, list[Link]]] = {}
    own_shutdown = Link.on_shutdown
    for link in links:
        # A subclass (or a test's mock of Link) decides for itself.
        if getattr(type(link), "on_shutdown", None) is not own_shutdown:
            try:
                link.on_shutdown()
            except Exception as exc:
                _LOGGER.error("%s: on_shutdown failed", link, exc_info=exc)
            continue
        if not link._detach():
            continue
        with link._nodes_lock:
            nodes: tuple[Node, ...] = link._inlets + link._outlets
        for node in nodes:
            entry = held.get(id(node))
            if entry is None:
                held[id(node)] = (node, [link])
            else:
                entry[1].append(link)
    for node, holders in held.values():
        try:
            if type(node).try_shutdown is Node.try_shutdown:
                node._release(holders)
            else:  # a node that overrides try_shutdown gets its own call per link
                for holder in holders:
                    node.try_shutdown(holder)
        except Exception as exc:
            _LOGGER.error(
                'on_shutdown of %r failed (released by %d links). on_shutdown %s exception: "%s"',
                node,
                len(holders),
                _kind(node),
                exc,
                exc_info=exc,
            )


#: The key by which run_isolated remembers a lane as slow: its outlet.
_lane_outlet = operator.attrgetter("outlet")


def _kind(node: object) -> str:
    """'inlet' or 'outlet', for messages."""
    return "inlet" if isinstance(node, Inlet) else "outlet"


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _is_batches(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(batch, list) for batch in value)


def _raise_first(outcomes: list[Any]) -> None:
    """Raise the first exception a lane ended with (e.g. the queue failing to ack)."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _pull_sync(inlet: Inlet, source: SourceSide) -> list[Record]:
    token = enter_pull(source, inlet)  # update.cursor knows which inlet asks
    try:
        return wrap_pulled(inlet, inlet.pull(source.update))
    finally:
        leave_pull(token)


def _pull_marked(inlet: Inlet, source: SourceSide) -> Any:
    """A synchronous pull on a worker thread, marked for ``update.cursor``."""
    token = enter_pull(source, inlet)
    try:
        return inlet.pull(source.update)
    finally:
        leave_pull(token)


async def _acquire_off_loop(lock: threading.Lock) -> None:
    """Acquire ``lock`` on a worker thread without blocking the running loop.

    If the awaiting task is cancelled first, the worker releases the lock as soon as it gets
    it, so a cancelled caller never leaves the lock held.
    """
    guard = threading.Lock()
    state = {"acquired": False, "abandoned": False}

    def acquire() -> None:
        lock.acquire()
        with guard:
            if state["abandoned"]:
                lock.release()
            else:
                state["acquired"] = True

    try:
        await asyncio.shield(off_loop(acquire))
    except asyncio.CancelledError:
        with guard:
            state["abandoned"] = True
            if state["acquired"]:
                lock.release()
        raise


def _push_sync(outlet: Outlet, batch: list[Record], update: Update) -> int:
    processed = outlet._process(batch)
    outlet.push(processed, update)
    return len(processed)


def _pull_value(inlet: Inlet, source: SourceSide) -> Awaitable[Any]:
    """What to await for ``inlet``'s pull: its coroutine, or the sync pull on the I/O pool.

    The caller marks the pull (:func:`enter_pull`) around the await: an ``async def pull``
    runs in the caller's task, and a sync one is marked again on its worker thread.
    """
    if inlet._pull_is_async:
        return inlet.pull(source.update)
    return off_loop(_pull_marked, inlet, source)


async def _pull_gated(
    inlet: Inlet,
    source: SourceSide,
    gate: asyncio.Semaphore | None,
) -> list[Record]:
    """One inlet's pull, in a task of its own; with a ``gate``, only while holding it (None:
    no limit to keep)."""
    token = enter_pull(source, inlet)
    try:
        if gate is None:
            value = await _pull_value(inlet, source)
        else:
            async with gate:
                value = await _pull_value(inlet, source)
    finally:
        leave_pull(token)
    return wrap_pulled(inlet, value)
