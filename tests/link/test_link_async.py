"""Transfers from sync code, from inside a running event loop, and awaited with transfer_async."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from core_fakes import AsyncListInlet, AsyncRecordingOutlet, ListInlet, RecordingOutlet

from databay_bus import Inlet, Link, Outlet, Record, Update

# Both event-loop drivers: the fast one and the public-API fallback (conftest.py).
pytestmark = pytest.mark.usefixtures("loop_driver")


class LoopInlet(Inlet):
    """Remembers the event loop each async pull ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def pull(self, update: Update) -> int:
        self.loops.append(asyncio.get_running_loop())
        return update.transfer_number


def sync_link() -> tuple[Link, RecordingOutlet]:
    outlet = RecordingOutlet()
    return Link(ListInlet([1]), outlet, 1), outlet


def async_link() -> tuple[Link, AsyncRecordingOutlet]:
    outlet = AsyncRecordingOutlet()
    return Link([AsyncListInlet([1]), ListInlet([2])], outlet, 1), outlet


@pytest.mark.parametrize("make", [sync_link, async_link])
def test_transfer_from_plain_sync_code(make: object) -> None:
    link, outlet = make()  # type: ignore[operator]
    link.transfer()
    assert len(outlet.batches) == 1


@pytest.mark.parametrize("make", [sync_link, async_link])
def test_transfer_called_inside_a_running_loop(make: object) -> None:
    link, outlet = make()  # type: ignore[operator]

    async def application() -> None:
        link.transfer()  # a plain call from a coroutine: Databay raised RuntimeError here
        link.transfer()

    asyncio.run(application())
    assert len(outlet.batches) == 2


@pytest.mark.parametrize("make", [sync_link, async_link])
def test_transfer_async_awaited(make: object) -> None:
    link, outlet = make()  # type: ignore[operator]

    async def application() -> None:
        await link.transfer_async()
        await link.transfer_async()

    asyncio.run(application())
    assert len(outlet.batches) == 2
    assert [u.transfer_number for u in outlet.updates] == [0, 1]


def test_transfer_async_does_not_block_the_callers_loop() -> None:
    released = threading.Event()

    class Waiting(Outlet):
        def push(self, records: list[Record], update: Update) -> None:
            assert released.wait(10), "the caller's loop was blocked by a sync push"

    link = Link(ListInlet([1]), Waiting(), 1)

    async def application() -> None:
        transfer = asyncio.ensure_future(link.transfer_async())
        await asyncio.sleep(0.01)  # the loop keeps running while the push waits
        released.set()
        await asyncio.wait_for(transfer, 10)

    asyncio.run(application())


def test_async_transfer_runs_on_the_callers_loop() -> None:
    inlet = LoopInlet()
    link = Link(inlet, AsyncRecordingOutlet(), 1)

    async def application() -> asyncio.AbstractEventLoop:
        await link.transfer_async()
        return asyncio.get_running_loop()

    loop = asyncio.run(application())
    assert inlet.loops == [loop]


def test_one_event_loop_is_reused_across_transfers() -> None:
    inlet = LoopInlet()
    link = Link(inlet, RecordingOutlet(), 1)
    for _ in range(3):
        link.transfer()
    assert len(inlet.loops) == 3
    assert inlet.loops[0] is inlet.loops[1] is inlet.loops[2]
    assert not inlet.loops[0].is_closed()


def test_concurrent_transfers_of_one_link_are_serialised() -> None:
    lock = threading.Lock()
    inside = [0]
    peak = [0]

    def pull(update: Update) -> int:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        threading.Event().wait(0.01)
        with lock:
            inside[0] -= 1
        return update.transfer_number

    outlet = RecordingOutlet()
    link = Link(ListInlet(pull), outlet, 1)

    async def both() -> None:
        await asyncio.gather(link.transfer_async(), asyncio.to_thread(link.transfer))

    threads = [threading.Thread(target=link.transfer) for _ in range(3)]
    for thread in threads:
        thread.start()
    asyncio.run(both())
    for thread in threads:
        thread.join(10)
    assert peak[0] == 1
    assert sorted(p for batch in outlet.payloads for p in batch) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("async_outlet", [False, True], ids=["sync-link", "async-link"])
def test_cancelled_transfer_async_never_leaves_the_link_locked(async_outlet: bool) -> None:
    entered, gate = threading.Event(), threading.Event()

    def first_blocks(update: Update) -> int:
        if update.transfer_number == 0:
            entered.set()
            assert gate.wait(10)
        return update.transfer_number

    outlet = AsyncRecordingOutlet() if async_outlet else RecordingOutlet()
    link = Link(ListInlet(first_blocks), outlet, 1)
    running = threading.Thread(target=link.transfer)
    running.start()
    assert entered.wait(10)

    async def impatient() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(link.transfer_async(), 0.05)

    asyncio.run(impatient())
    gate.set()
    running.join(10)
    finished = threading.Event()
    threading.Thread(target=lambda: (link.transfer(), finished.set()), daemon=True).start()
    assert finished.wait(10), "a cancelled transfer_async left the link locked"
    numbers = [u.transfer_number for u in outlet.updates]
    assert numbers == list(range(len(numbers)))  # one at a time, none lost or repeated


def test_a_finished_thread_does_not_leave_its_event_loop_open() -> None:
    inlet = LoopInlet()
    link = Link(inlet, RecordingOutlet(), 1)
    worker = threading.Thread(target=link.transfer)
    worker.start()
    worker.join(10)
    gc.collect()
    (loop,) = inlet.loops
    assert loop.is_closed()


class _LoopThread:
    """An event loop running in a thread of its own: a home for HomedInlet."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def home() -> object:
    loop_thread = _LoopThread()
    yield loop_thread
    loop_thread.close()


def homed_inlet_class(home: _LoopThread) -> type[LoopInlet]:
    class HomedInlet(LoopInlet):
        _get_home_loop = staticmethod(lambda: home.loop)

    return HomedInlet


def test_link_of_homed_nodes_runs_its_whole_transfer_on_their_loop(home: _LoopThread) -> None:
    """Async nodes that all name one home loop: pulls and pushes run there."""
    homed = homed_inlet_class(home)
    inlets = [homed(), homed()]
    pushed_on: list[asyncio.AbstractEventLoop] = []

    class LoopOutlet(Outlet):
        def push(self, records: list[Record], update: Update) -> None:  # sync: on the I/O pool
            pushed_on.append(records[0].payload)

    link = Link([*inlets, ListInlet(["sync inlet"])], LoopOutlet(), 1)
    link.transfer()
    link.transfer()
    assert all(loop is home.loop for inlet in inlets for loop in inlet.loops)
    assert len(inlets[0].loops) == 2 and pushed_on == [0, 1]


def test_mixed_homes_run_on_the_callers_thread_loop(home: _LoopThread) -> None:
    """One async node without that home: the transfer stays on this thread's own loop."""
    homed_inlet, plain = homed_inlet_class(home)(), LoopInlet()
    link = Link([homed_inlet, plain], RecordingOutlet(), 1)
    link.transfer()
    assert plain.loops[0] is not home.loop
    assert homed_inlet.loops[0] is plain.loops[0]


def test_homed_transfer_errors_reach_the_caller(home: _LoopThread) -> None:
    homed = homed_inlet_class(home)

    class Failing(homed):  # type: ignore[valid-type, misc]
        async def pull(self, update: Update) -> int:
            raise ValueError("failed at home")

    link = Link(Failing(), RecordingOutlet(), 1)
    with pytest.raises(ValueError, match="failed at home"):
        link.transfer()
