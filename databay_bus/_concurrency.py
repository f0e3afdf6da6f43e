"""Threads and event loops: where sync and async code meet.

* :func:`is_async_callable` decides once whether a callable returns a coroutine.
* :func:`run_coroutine` runs a coroutine to completion from synchronous code. Each thread
  reuses one event loop of its own, so no loop is built per transfer and async resources
  made on that loop (an aiohttp session) survive from one transfer to the next. A thread
  that already runs a loop (Jupyter, an asyncio application calling ``link.transfer()``)
  cannot nest another, so its coroutines go to one shared background loop instead.
* :class:`WorkerPool` is a thread pool of daemon threads: a hung outlet can never keep the
  process from exiting, which ``concurrent.futures.ThreadPoolExecutor`` (joined at exit) would.

The fast loop driver (:class:`_TransferLoop`, :func:`_drive`) steps CPython's event loop
through private attributes, about 4x cheaper per transfer than ``run_until_complete``. It is
used only where it was written and tested: CPython 3.11 and 3.12, with the attributes it
needs present (:data:`FAST_LOOP_SUPPORTED`). Everywhere else, and when the environment
variable ``DATABAY_BUS_ASYNCIO=public`` is set (or :data:`FAST_LOOP` is set False), each
thread runs a plain event loop through the public API (``run_until_complete``): the same
behaviour, a few microseconds more per async transfer.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import itertools
import os
import platform
import queue
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = [
    "FAST_LOOP",
    "FAST_LOOP_SUPPORTED",
    "WorkerPool",
    "gather_results",
    "io_pool",
    "is_async_callable",
    "off_loop",
    "run_coroutine",
    "run_isolated",
    "run_parallel",
    "start_isolated",
]

T = TypeVar("T")
A = TypeVar("A")

_local = threading.local()
_TASK_NAME = "databay_bus transfer"
_background_loop: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def _fast_loop_supported() -> bool:
    """True on the interpreters the private-attribute driver was written for (CPython 3.11
    and 3.12), when what it touches is there."""
    if platform.python_implementation() != "CPython" or not (
        (3, 11) <= sys.version_info[:2] <= (3, 12)
    ):
        return False
    base = asyncio.BaseEventLoop
    return (
        callable(getattr(base, "_run_once", None))
        and callable(getattr(base, "_asyncgen_firstiter_hook", None))
        and callable(getattr(base, "_asyncgen_finalizer_hook", None))
        and callable(getattr(asyncio.events, "_set_running_loop", None))
    )


#: Whether this interpreter can use the fast loop driver.
FAST_LOOP_SUPPORTED = _fast_loop_supported()
#: Whether threads drive their loops with it (False: the public asyncio API only). Read when
#: a thread makes its loop; tests switch it to run async transfers both ways.
FAST_LOOP = FAST_LOOP_SUPPORTED and os.environ.get("DATABAY_BUS_ASYNCIO", "") != "public"


def is_async_callable(obj: Any) -> bool:
    """True when calling ``obj`` returns a coroutine (async functions, partials, ``__call__``)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - we need the async-ness of __call__
    )


class _TransferLoop(asyncio.SelectorEventLoop):
    """The loop a thread drives its async transfers on; its tasks start eagerly.

    A task made by :meth:`eager_task` runs its first step at once, inside the task, as
    Python 3.12's ``eager_start=True`` does: a transfer whose nodes never really wait
    finishes without one turn of the loop. On 3.11 the first step is taken from the one
    ``call_soon`` the new task makes, instead of leaving it in the ready queue.
    """

    _first_step: list[tuple[Callable[[], object], contextvars.Context | None]] | None = None
    _thread_id: int | None  # BaseEventLoop's: the thread running the loop, None when stopped

    def __init__(self) -> None:
        super().__init__()
        # Bound once: what _drive installs as this thread's async-generator hooks.
        self.asyncgen_hooks = (self._asyncgen_firstiter_hook, self._asyncgen_finalizer_hook)  # type: ignore[attr-defined]

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle | None:
        taken = self._first_step
        if taken is not None and not args:
            self._first_step = None
            taken.append((callback, context))
            return None  # the task ignores the handle of its first step
        return super().call_soon(callback, *args, context=context)

    def drive(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion in this thread, which runs no loop; see :func:`_drive`."""
        hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        sys.set_asyncgen_hooks(*self.asyncgen_hooks)
        asyncio.events._set_running_loop(self)
        task: asyncio.Task[T] | None = None
        try:
            task = self._eager_task(coro)
            while not task.done():
                self._run_once()  # type: ignore[attr-defined]
            if self._ready or self._scheduled:  # type: ignore[attr-defined]
                self._run_due()
        finally:
            asyncio.events._set_running_loop(None)
            self._thread_id = None
            sys.set_asyncgen_hooks(*hooks)
            if task is not None and not task.done():  # interrupted: do not leak a pending task
                task.cancel()
        return task.result()

    def _eager_task(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task of ``coro`` that has already run up to its first real wait."""
        # A fixed name says what the task is, and spares 3.11 formatting "Task-<n>" (~0.7 us).
        if sys.version_info >= (3, 12):
            return asyncio.Task(coro, loop=self, eager_start=True, name=_TASK_NAME)
        taken: list[tuple[Callable[[], object], contextvars.Context | None]] = []
        self._first_step = taken
        try:
            task = asyncio.Task(coro, loop=self, name=_TASK_NAME)
        finally:
            self._first_step = None
        step, context = taken[0]
        if context is None:
            step()
        else:
            context.run(step)
        return task

    def _run_due(self) -> None:
        """One loop turn that polls I/O without blocking, when a ready callback or a timer
        that is due waits for one (what earlier transfers scheduled, such as closing an async
        generator, still runs)."""
        scheduled = self._scheduled  # type: ignore[attr-defined]
        now = time.monotonic()  # what self.time() returns, without its call
        if self._ready or scheduled[0].when() <= now:  # type: ignore[attr-defined]
            self.call_soon(_nothing)
            self._run_once()  # type: ignore[attr-defined]


class _ThreadLoop:
    """Owns one thread's event loop and closes it when the thread ends (its locals are freed),
    so threads that ran an async transfer and exit do not leak an open loop."""

    def __init__(self, fast: bool) -> None:
        self.requested = fast
        loop: asyncio.AbstractEventLoop | None = _TransferLoop() if fast else None
        if loop is not None and not all(hasattr(loop, name) for name in _LOOP_STATE):
            loop.close()  # pragma: no cover - a CPython build without them
            loop = None
        # Whatever the event loop policy, a SelectorEventLoop either way (docs/async.md).
        self.loop = loop if loop is not None else asyncio.SelectorEventLoop()

    def __del__(self) -> None:
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()


#: The loop attributes the fast driver reads and writes besides the class's methods.
_LOOP_STATE = ("_ready", "_scheduled", "_thread_id")


def _thread_loop() -> asyncio.AbstractEventLoop:
    owner: _ThreadLoop | None = getattr(_local, "owner", None)
    fast = FAST_LOOP
    if owner is None or owner.loop.is_closed() or owner.requested is not fast:
        if owner is not None and not owner.loop.is_running():
            owner.loop.close()
        owner = _ThreadLoop(fast)
        _local.owner = owner
    return owner.loop


def _public_running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, or None, through the public API."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


#: The loop running in this thread, or None: one C call where the fast driver is supported,
#: instead of a raised RuntimeError.
_running_loop: Callable[[], asyncio.AbstractEventLoop | None] = (
    asyncio._get_running_loop if FAST_LOOP_SUPPORTED else _public_running_loop
)


def _shared_background_loop() -> asyncio.AbstractEventLoop:
    global _background_loop
    started = _background_loop  # made once, never replaced: no lock once it exists
    if started is not None:
        return started
    with _background_lock:
        if _background_loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="databay_bus-loop", daemon=True)
            thread.start()
            _background_loop = loop
        return _background_loop


def run_coroutine(
    coro: Coroutine[Any, Any, T],
    home: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run ``coro`` to completion from synchronous code and return its result.

    With ``home``, ``coro`` runs on the loop it returns (a loop running in another thread).
    Otherwise it runs on this thread's own loop, or on the shared background loop when this
    thread already runs a loop of its own.
    """
    if home is None and _running_loop() is None:
        return _drive(_thread_loop(), coro)
    target = home() if home is not None else _shared_background_loop()
    future = asyncio.run_coroutine_threadsafe(coro, target)
    try:
        return future.result()
    except BaseException:
        future.cancel()  # interrupted (KeyboardInterrupt): do not leave it running there
        raise


def _drive(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """``loop.run_until_complete(coro)`` without its per-call bookkeeping.

    ``run_until_complete`` costs about 12 us per call, most of it setting up and tearing
    down ``run_forever``, a loop turn to start the task and one more for its stop callback;
    a transfer pays it every time. On our own :class:`_TransferLoop` we set exactly what
    ``run_forever`` sets (running loop, owning thread, async-generator hooks), start the
    task eagerly and turn the loop only while the task really waits, plus one turn without
    waiting when callbacks are due (so what earlier transfers scheduled, such as closing an
    async generator, still runs): about 3 us. Any other loop goes through the public call,
    in a task named as the fast driver names it. ``loop`` must not be running (run_coroutine
    calls this only when no loop runs in its thread).
    """
    if isinstance(loop, _TransferLoop):
        return loop.drive(coro)
    return loop.run_until_complete(_named_task(loop, coro))


def _named_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """A task of ``coro`` named as the fast driver's, for loops that can make one."""
    create_task = getattr(loop, "create_task", None)
    if create_task is None:
        return coro
    task: asyncio.Task[T] = create_task(coro, name=_TASK_NAME)
    return task


def _nothing() -> None:
    """A callback that only keeps a loop turn from blocking."""


class WorkerPool(Executor):
    """A thread pool whose threads are daemons, started on demand up to ``max_workers``.

    ``shutdown(wait=False)`` returns at once even while a task hangs; the hung thread is
    abandoned and cannot block interpreter exit.
    """

    _counter = itertools.count()

    def __init__(self, max_workers: int, name: str = "databay_bus-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._max_workers = max_workers
        self._name = name
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} pool is shut down; cannot run {fn!r}")
            self._tasks.put((future, functools.partial(fn, *args, **kwargs)))
            if self._idle == 0 and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{next(self._counter)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        return future

    def _work(self) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, call
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                threads: list[threading.Thread] = []
            else:
                self._closed = True
                threads = list(self._threads)
                for _ in threads:
                    self._tasks.put(None)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()


_io_pool: WorkerPool | None = None
_io_lock = threading.Lock()


def io_pool() -> WorkerPool:
    """The shared pool that runs sync pulls and pushes side by side within one transfer."""
    global _io_pool
    pool = _io_pool  # made once, never replaced: no lock once it exists
    if pool is not None:
        return pool
    with _io_lock:
        if _io_pool is None:
            _io_pool = WorkerPool(64, name="databay_bus-io")
        return _io_pool


def off_loop(call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``call(*args)`` on the I/O pool, awaitable from the running loop: blocking work (a
    sync node, a queue write) that must not stall the loop's other tasks."""
    return asyncio.get_running_loop().run_in_executor(io_pool(), call, *args)


def run_parallel(calls: Iterable[Callable[[], T]], limit: int) -> list[T | BaseException]:
    """Run ``calls`` at most ``limit`` at a time; return each result or exception, in order.

    The last call runs in the calling thread, so a single call costs no thread hop.
    """
    pending = list(calls)
    if len(pending) <= 1 or limit <= 1:
        return [_capture(call) for call in pending]
    results: list[T | BaseException] = [None] * len(pending)  # type: ignore[list-item]
    gate = threading.BoundedSemaphore(limit)

    def gated(call: Callable[[], T]) -> T | BaseException:
        with gate:
            return _capture(call)

    pool = io_pool()
    futures = [pool.submit(gated, call) for call in pending[:-1]]
    results[-1] = gated(pending[-1])
    for index, future in enumerate(futures):
        results[index] = future.result()
    return results


#: How long a call run inline may take before the calls queued behind it go to threads.
INLINE_BUDGET = 0.005


def run_isolated(
    call: Callable[[A], T],
    items: Sequence[A],
    slow: set[Hashable],
    key: Callable[[A], Hashable],
    budget: float = INLINE_BUDGET,
) -> list[T | BaseException]:
    """``call(item)`` for every item, side by side, as ``run_parallel`` without a limit, but
    cheaply when the calls are quick; return each result or exception, in order.

    A thread hop costs tens of microseconds, more than a quick push. So items whose
    ``key(item)`` is in ``slow`` start on pool threads at once, and the others run one after
    another on the calling thread. Should they take longer than ``budget`` seconds, a
    watchdog thread hands the items not yet started to pool threads, so it delays them by
    about ``budget`` at most. A call that took longer than ``budget`` puts its key in
    ``slow`` (it runs on a thread from then on); a threaded call that was quick takes it out
    again.
    """
    results, futures = start_isolated(call, items, slow, key, io_pool(), budget)
    if futures is not None:
        for index, future in futures.items():
            results[index] = future.result()
    return results


def start_isolated(
    call: Callable[[A], T],
    items: Sequence[A],
    slow: set[Hashable],
    key: Callable[[A], Hashable],
    pool: Executor,
    budget: float = INLINE_BUDGET,
) -> tuple[list[T | BaseException], dict[int, Future[T | BaseException]] | None]:
    """Start ``call(item)`` for every item as :func:`run_isolated` does, on ``pool``'s threads
    where not on the calling thread, but return once nothing is left to start here.

    Returns the results of the items run here (None for the others) and the futures of those
    handed to ``pool``, which may still run (None when there are none: no dict is made for
    the usual quick run). Should ``pool`` be shut down when the watchdog
    hands items off, those never start: their futures are cancelled.
    """
    count = len(items)
    results: list[T | BaseException] = [None] * count  # type: ignore[list-item]
    inline: Sequence[int] = range(count)
    futures: dict[int, Future[T | BaseException]] | None = None
    if slow:
        threaded = [i for i in inline if key(items[i]) in slow]
        if threaded:
            inline = [i for i in inline if key(items[i]) not in slow]
            if not inline:
                inline = [threaded.pop()]  # its own thread would only make this one wait
            futures = {
                index: pool.submit(_timed, call, items[index], slow, key, budget)
                for index in threaded
            }
    if len(inline) == 1:
        index = inline[0]
        results[index] = _timed(call, items[index], slow, key, budget)
    elif inline:
        run = _InlineRun(call, items, inline, slow, key, budget, pool)
        run.run_here(results)
        if run.futures is not None:
            futures = run.futures if futures is None else {**futures, **run.futures}
    return results, futures


def _timed(
    call: Callable[[A], T],
    item: A,
    slow: set[Hashable],
    key: Callable[[A], Hashable],
    budget: float,
) -> T | BaseException:
    """``call(item)`` or its exception; its key joins or leaves ``slow`` by how long it took."""
    started = time.monotonic()
    try:
        result: T | BaseException = call(item)
    except Exception as exc:
        result = exc
    if time.monotonic() - started > budget:
        slow.add(key(item))
    elif slow:
        slow.discard(key(item))
    return result


class _InlineRun:
    """Calls run one by one on the calling thread, until the watchdog takes the rest.

    Both threads take items from ``pending`` (the indexes not started yet, last to run
    first) with ``pop`` (thread-safe: each item is taken once, with no lock of ours). The
    watchdog hands items off under its own lock and sets ``futures`` before it takes any,
    so the calling thread, done with its own items, waits on that lock only when
    ``futures`` is set; then every item is done or has a future.
    """

    __slots__ = ("began", "budget", "call", "futures", "items", "key", "pending", "pool", "slow")

    def __init__(
        self,
        call: Callable[[Any], Any],
        items: Sequence[Any],
        order: Sequence[int],
        slow: set[Hashable],
        key: Callable[[Any], Hashable],
        budget: float,
        pool: Executor,
    ) -> None:
        # A list popped from its end, not a deque (which allocates a block of 64 slots).
        self.call, self.items, self.pending = call, items, list(order[::-1])
        self.slow, self.key, self.budget, self.pool = slow, key, budget, pool
        self.futures: dict[int, Future[Any]] | None = None  # set by a hand-off
        self.began: float | None = None  # when the run here began; None once it has ended

    def run_here(self, results: list[Any]) -> None:
        """Run the items here until none is left; then wait for a hand-off under way."""
        call, items, pending, slow, budget = (
            self.call,
            self.items,
            self.pending,
            self.slow,
            self.budget,
        )
        watchdog = _watchdog()
        watchdog.watch(self)
        try:
            self.began = started = time.monotonic()
            while pending:
                try:
                    index = pending.pop()
                except IndexError:  # the watchdog took the last one
                    break
                item = items[index]
                try:
                    results[index] = call(item)
                except Exception as exc:
                    results[index] = exc
                ended = time.monotonic()  # also the start of the next call
                if ended - started > budget:
                    slow.add(self.key(item))
                elif slow:
                    slow.discard(self.key(item))
                started = ended
            self.began = None
        finally:
            pending.clear()  # interrupted: nothing more starts, here or on a thread
            watchdog.unwatch(self)

    def hand_off_if_late(self, now: float) -> None:
        """Watchdog, under its lock: the run here has lasted past the budget: the items not
        started yet go to pool threads."""
        began = self.began
        if began is None or now - began <= self.budget or not self.pending:
            return
        futures = self.futures
        if futures is None:
            futures = self.futures = {}  # before taking any item (see the class doc)
        pending = self.pending
        while True:
            try:
                index = pending.pop()
            except IndexError:
                return
            futures[index] = self._hand_off(index)

    def _hand_off(self, index: int) -> Future[Any]:
        try:
            return self.pool.submit(
                _timed, self.call, self.items[index], self.slow, self.key, self.budget
            )
        except RuntimeError:  # the pool was shut down (its owner stops): the item never starts
            dropped: Future[Any] = Future()
            dropped.cancel()
            return dropped


class _Watchdog:
    """One daemon thread that checks the inline runs in progress once per budget.

    While runs come and go it polls; after ``idle`` seconds without any it sleeps until the
    next, so a steady stream of transfers never pays for waking it, and a planner ticking
    every second or so does not keep it polling 200 times a second (it did with a second of
    idling: a planner's ticks run as inline runs too). Each poll takes the GIL from
    the transferring threads: polling every 5 ms instead of every 1 ms took its cost per
    3-outlet transfer from ~30 us to ~1 us (loaded 2-core machine); a late call is handed
    off after one to two budgets.
    """

    def __init__(self, period: float, idle: float = 0.02) -> None:
        self._period = period
        self._idle = idle  # seconds without runs before the thread sleeps
        # Runs in progress. Added and discarded without a lock (set.add and set.discard are
        # thread-safe); the lock serialises hand-offs, and sleeping and waking the thread.
        self._runs: set[_InlineRun] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._asleep = False
        self._thread = threading.Thread(target=self._loop, name="databay_bus-lanes", daemon=True)
        self._thread.start()

    def watch(self, run: _InlineRun) -> None:
        self._runs.add(run)
        if self._asleep:  # read after the add: see _loop
            with self._lock:
                self._asleep = False
                self._wake.notify()

    def unwatch(self, run: _InlineRun) -> None:
        self._runs.discard(run)
        if run.futures is not None:
            with self._lock:  # the hand-off under way, if any, has ended
                pass

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._lock:
                if self._runs:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self._idle:
                    # Asleep is set before the runs are looked at again, and watch() reads
                    # it after adding its run: either this sees the run, or watch wakes it.
                    self._asleep = True
                    while self._asleep and not self._runs:
                        self._wake.wait()
                    self._asleep = False
                    idle_since = time.monotonic()
            self._check()  # a call of its own: no run (nor its link) stays referenced
            time.sleep(self._period)

    def _check(self) -> None:
        runs = list(self._runs)
        if not runs:
            return
        now = time.monotonic()
        with self._lock:
            for run in runs:
                run.hand_off_if_late(now)


_watchdog_instance: _Watchdog | None = None
_watchdog_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    found = _watchdog_instance
    if found is None:
        found = _start_watchdog()
    return found


def _start_watchdog() -> _Watchdog:
    global _watchdog_instance
    with _watchdog_lock:
        if _watchdog_instance is None:
            _watchdog_instance = _Watchdog(INLINE_BUDGET)
        return _watchdog_instance


async def gather_results(awaitables: list[Awaitable[T]]) -> list[T | BaseException]:
    """Await all side by side; return each result or exception, in order.

    A single awaitable is awaited directly: no task, no extra event-loop iteration.
    """
    if len(awaitables) == 1:
        try:
            return [await awaitables[0]]
        except Exception as exc:
            return [exc]
    return await asyncio.gather(*awaitables, return_exceptions=True)


def _capture(call: Callable[[], T]) -> T | BaseException:
    try:
        return call()
    except Exception as exc:
        return exc
