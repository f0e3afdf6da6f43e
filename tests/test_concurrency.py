"""The private event-loop driver behaves like run_until_complete, which it replaces."""

from __future__ import annotations

import asyncio
import threading

import pytest

from databay_bus._concurrency import _drive, run_coroutine


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
