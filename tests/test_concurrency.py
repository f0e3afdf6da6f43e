"""The private event-loop driver behaves like run_until_complete, which it replaces."""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from databay_bus import _concurrency
from databay_bus._concurrency import _drive, run_coroutine

# Both event-loop drivers: the fast one and the public-API fallback (conftest.py).
pytestmark = pytest.mark.usefixtures("loop_driver")


async def _probe() -> tuple[bool, bool, bool]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)  # really suspends: the loop must resume us
    return loop.is_running(), asyncio.current_task() is not None, loop is asyncio.get_running_loop()


def test_driver_runs_a_real_task_on_a_running_loop() -> None:
    """Inside the coroutine the loop runs, there is a current task, timeouts work."""
    assert run_coroutine(_probe()) == (True, True, True)

    async def with_timeout() -> str:
        await asyncio.wait_for(asyncio.sleep(0.001), timeout=5)
        return "done"

    assert run_coroutine(with_timeout()) == "done"


def test_driver_leaves_no_running_loop_behind() -> None:
    """After a transfer the thread has no running loop, so asyncio.run still works there."""
    run_coroutine(_probe())
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert asyncio.run(_probe()) == (True, True, True)


def test_exceptions_propagate_and_loop_is_reusable() -> None:
    """An exception comes out as is; the same thread loop serves the next call."""

    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_coroutine(boom())
    assert run_coroutine(_probe())[0] is True


def test_async_generators_are_finalised() -> None:
    """The loop's async-generator hooks are installed while driving, as run_forever does."""
    closed = threading.Event()

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
            yield 2
        finally:
            closed.set()

    async def take_one() -> int:
        async for value in agen():
            return value
        return 0

    assert run_coroutine(take_one()) == 1
    run_coroutine(asyncio.sleep(0))  # let the loop run the scheduled aclose()
    assert closed.is_set()


def test_fallback_for_loops_without_run_once() -> None:
    """A loop that is not CPython's BaseEventLoop goes through run_until_complete."""
    calls: list[str] = []
    inner = asyncio.new_event_loop()

    class OtherLoop:
        def run_until_complete(self, coro):  # type: ignore[no-untyped-def]
            calls.append("run_until_complete")
            return inner.run_until_complete(coro)

        def is_running(self) -> bool:
            return False

    try:
        assert _drive(OtherLoop(), _probe()) == (True, True, True)  # type: ignore[arg-type]
    finally:
        inner.close()
    assert calls == ["run_until_complete"]


async def _first_step_probe() -> tuple[bool, bool, str]:
    # No await before these checks: they run in the task's eager first step.
    task = asyncio.current_task()
    assert task is not None
    return True, task.get_loop() is asyncio.get_running_loop(), task.get_name()


def test_first_step_runs_inside_a_real_task() -> None:
    """Code before the first await (aiohttp's timers, asyncio.timeout) sees its task, whose
    name says what it runs."""
    assert run_coroutine(_first_step_probe()) == (True, True, "databay_bus transfer")

    async def with_timeout() -> str:
        async with asyncio.timeout(5):  # raises RuntimeError outside a task
            return "in time"

    assert run_coroutine(with_timeout()) == "in time"


def test_context_variables_do_not_leak_out_of_a_run() -> None:
    """Each run gets a copy of the caller's context, as a task always does."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")

    async def set_it() -> str:
        var.set("inside")
        return var.get()

    assert run_coroutine(set_it()) == "inside"
    assert var.get() == "outside"


def test_callbacks_left_by_a_run_run_in_the_next_one() -> None:
    """A run that never waits still gives waiting callbacks one turn, so they cannot pile up."""
    ran = threading.Event()

    async def schedule() -> None:
        asyncio.get_running_loop().call_soon(ran.set)

    async def no_wait() -> int:
        return 1

    run_coroutine(schedule())
    run_coroutine(no_wait())
    assert ran.is_set()


def test_a_far_timer_never_blocks_a_run() -> None:
    """A timer due in an hour is left alone: the extra turn polls without waiting, also
    when a cancelled timer that is already due sits in front of it."""
    fired: list[int] = []

    async def far_timer() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0, fired.append, 0).cancel()
        loop.call_later(3600, fired.append, 1)

    async def no_wait() -> str:
        return "quick"

    results: list[str] = []
    worker = threading.Thread(
        target=lambda: (run_coroutine(far_timer()), results.append(run_coroutine(no_wait())))
    )
    worker.start()
    worker.join(timeout=30)
    assert results == ["quick"] and not fired


def test_each_driver_runs_on_its_own_kind_of_loop(loop_driver: str) -> None:
    """The fast driver steps a _TransferLoop; the fallback runs a plain asyncio loop."""
    assert run_coroutine(_probe()) == (True, True, True)
    loop = _concurrency._thread_loop()
    assert isinstance(loop, _concurrency._TransferLoop) is (loop_driver == "fast")


@pytest.mark.parametrize("version", [(3, 10, 13), (3, 13, 0), (4, 0, 0)])
def test_fast_driver_only_where_it_was_written_for(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int]
) -> None:
    monkeypatch.setattr(_concurrency, "sys", SimpleNamespace(version_info=version))
    assert _concurrency._fast_loop_supported() is False


def test_environment_switch_forces_the_public_driver() -> None:
    code = "from databay_bus import _concurrency as c; print(c.FAST_LOOP)"
    env = {**os.environ, "DATABAY_BUS_ASYNCIO": "public", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "False", done.stderr


def test_run_isolated_returns_results_and_errors_in_order() -> None:
    """Inline, threaded (a key marked slow) and handed-off calls all land in their place."""
    error = ValueError("no")

    def fail() -> int:
        raise error

    released = threading.Event()

    def blocks() -> int:
        assert released.wait(10)
        return 2

    def quick_then_release() -> int:
        released.set()  # runs only once the blocked call before it was handed off
        return 3

    slow: set[object] = {"threaded"}
    calls = [lambda: 0, fail, blocks, quick_then_release, lambda: 4]
    items = list(zip(["a", "b", "c", "d", "threaded"], calls, strict=True))

    def call(item: tuple[str, Callable[[], int]]) -> int:
        return item[1]()

    def key(item: tuple[str, Callable[[], int]]) -> str:
        return item[0]

    results = _concurrency.run_isolated(call, items, slow, key)
    assert results == [0, error, 2, 3, 4]
    assert slow == {"c"}  # the blocked call proved slow; the threaded one was quick


def test_run_isolated_wakes_a_sleeping_watchdog(
    monkeypatch: pytest.MonkeyPatch, wait_until: Callable[..., None]
) -> None:
    """The watchdog sleeps while no inline run is in progress; the next run wakes it, so a
    blocked call still hands the calls after it to threads."""
    watchdog = _concurrency._Watchdog(_concurrency.INLINE_BUDGET, idle=0.01)
    monkeypatch.setattr(_concurrency, "_watchdog_instance", watchdog)
    wait_until(lambda: watchdog._asleep, message="the watchdog to sleep")
    released = threading.Event()

    def blocks() -> int:
        assert released.wait(10)  # only a thread running the next call can set it
        return 1

    def release() -> int:
        released.set()
        return 2

    def call(item: Callable[[], int]) -> int:
        return item()

    assert _concurrency.run_isolated(call, [blocks, release], set(), id) == [1, 2]
    assert not watchdog._runs


def test_run_isolated_interrupted_starts_nothing_more() -> None:
    """A BaseException (Ctrl-C) in an inline call propagates at once: the calls after it
    never run, here or on a thread, and the run is no longer watched."""
    ran: list[str] = []

    def interrupted() -> None:
        ran.append("interrupted")
        raise KeyboardInterrupt

    def later() -> None:
        ran.append("later")

    def call(item: Callable[[], None]) -> None:
        item()

    with pytest.raises(KeyboardInterrupt):
        _concurrency.run_isolated(call, [interrupted, later, later], set(), id)
    time.sleep(4 * _concurrency.INLINE_BUDGET)  # time for a (wrong) hand-off to run them
    assert ran == ["interrupted"]
    assert not _concurrency._watchdog()._runs


def test_inline_run_hands_off_once_the_run_outlasts_the_budget() -> None:
    """The budget bounds how long an item waits to start, not how long one call takes: a run
    of quick calls that together outlast it hands the rest off too."""
    budget = _concurrency.INLINE_BUDGET
    pool = _concurrency.WorkerPool(2, name="test-hand-off")
    try:
        run = _concurrency._InlineRun(str, [1, 2, 3], range(3), set(), id, budget, pool)
        run.began = 100.0  # as if the run here began then, its current call just now
        run.hand_off_if_late(100.0 + budget / 2)
        assert run.futures is None and len(run.pending) == 3
        run.hand_off_if_late(100.0 + 2 * budget)
        assert run.futures is not None and not run.pending
        assert {index: future.result(10) for index, future in run.futures.items()} == {
            0: "1",
            1: "2",
            2: "3",
        }
    finally:
        pool.shutdown()


def test_start_isolated_cancels_what_a_shut_down_pool_refuses() -> None:
    """Hand-offs to a pool shut down meanwhile (its planner stops) never start: their futures
    are cancelled, so the owner can tell them from items run or still running."""
    pool = _concurrency.WorkerPool(1, name="test-refused")
    pool.shutdown()
    run = _concurrency._InlineRun(str, [1, 2], range(2), set(), id, 0.0, pool)
    run.began = 0.0
    run.hand_off_if_late(1.0)
    assert run.futures is not None and not run.pending
    assert all(future.cancelled() for future in run.futures.values())


def test_start_isolated_returns_with_hand_offs_still_running() -> None:
    """Unlike run_isolated, it does not wait for the calls on the pool."""
    released = threading.Event()
    pool = _concurrency.WorkerPool(2, name="test-no-wait")

    def call(item: str) -> str:
        if item == "slow":
            assert released.wait(10)
        return item.upper()

    try:
        results, futures = _concurrency.start_isolated(
            call, ["quick", "slow", "last"], {"slow"}, str, pool
        )
        assert results == ["QUICK", None, "LAST"]
        assert futures is not None and list(futures) == [1] and not futures[1].done()
        released.set()
        assert futures[1].result(10) == "SLOW"
    finally:
        released.set()
        pool.shutdown()
