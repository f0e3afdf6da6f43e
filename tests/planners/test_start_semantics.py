"""Start and shutdown as a Databay user relies on them (issue 13, items 1-4).

* ``start()`` returns when a subclass's ``_start_planner`` returns;
* ticks go through the public ``Link.transfer()``, so a Link subclass's override runs;
* ``shutdown()`` of a planner that never ran still stops its scheduler and its links' nodes;
* ``pause()`` / ``resume()`` / ``shutdown()`` right after ``Thread(target=planner.start)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from core_fakes import GateOutlet, ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import BasePlanner, Link
from databay_bus.errors import PlannerStateError
from databay_bus.planners import ApsPlanner, PlannerState, SchedulePlanner


class BackgroundPlanner(BasePlanner):
    """A subclass written from Databay's extension guide: ``_start_planner`` starts a
    background thread and returns; nothing declares whether ``start()`` blocks."""

    def __init__(self, links: Link | list[Link] | None = None) -> None:
        self.halt = threading.Event()
        self.worker: threading.Thread | None = None
        self.scheduler_stops: list[bool] = []
        super().__init__(links)

    def _schedule(self, link: Link) -> None:
        link.set_job(id(link))

    def _unschedule(self, link: Link) -> None:
        link.set_job(None)

    def _start_planner(self) -> None:
        self.halt.clear()
        self.worker = threading.Thread(target=self.halt.wait, args=(30,), daemon=True)
        self.worker.start()

    def _shutdown_planner(self, wait: bool = True) -> None:
        self.scheduler_stops.append(wait)
        self.halt.set()


class CountingLink(Link):
    """A Link subclass that counts its transfers in an overridden ``transfer()``."""

    __slots__ = ("calls",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def transfer(self) -> None:
        self.calls += 1
        super().transfer()


class HeldThread(threading.Thread):
    """A thread that is alive but holds back its target until ``go`` is set: the moment
    between ``Thread(target=planner.start).start()`` and ``start()`` actually running."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(target=target, daemon=True)
        self.go = threading.Event()

    def run(self) -> None:
        assert self.go.wait(10)
        super().run()


def in_thread(call: Callable[[], None]) -> tuple[threading.Thread, threading.Event]:
    """Run ``call`` on a daemon thread; the event is set when it returned."""
    done = threading.Event()

    def run() -> None:
        call()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


class TestStartReturnsWithStartPlanner:
    def test_non_blocking_subclass_returns_from_start(self) -> None:
        link = Link(ListInlet([1]), RecordingOutlet(), 60)
        planner = BackgroundPlanner(link)
        planner.start()  # returns: _start_planner returned
        try:
            assert planner.running
            assert link.outlets[0].active
            assert isinstance(link.outlets[0], RecordingOutlet)
            assert link.outlets[0].payloads == [[1]]  # the immediate transfer ran first
        finally:
            planner.shutdown()
        assert planner.scheduler_stops == [True]
        assert not link.outlets[0].active

    def test_explicit_block_still_waits_for_shutdown(self, wait_until: Callable[..., None]) -> None:
        planner = BackgroundPlanner(Link(ListInlet([1]), RecordingOutlet(), 60))
        thread, done = in_thread(lambda: planner.start(block=True))
        wait_until(lambda: planner.running, message="the planner to run")
        assert not done.is_set()
        planner.shutdown()
        assert done.wait(10)
        thread.join(10)

    @pytest.mark.parametrize(
        "make", [ApsPlanner, lambda link: SchedulePlanner(link, refresh_interval=0.05)]
    )
    def test_built_in_planners_block_by_default(self, make: Any) -> None:
        link = Link(ListInlet([1]), GateOutlet(), 60)
        planner = make(link)
        thread, done = in_thread(planner.start)
        outlet = link.outlets[0]
        assert isinstance(outlet, GateOutlet)
        assert outlet.entered.wait(10)  # running: its immediate transfer is in the outlet
        outlet.release.set()
        assert not done.is_set()
        planner.shutdown()
        assert done.wait(10)
        thread.join(10)


class TestTicksCallPublicTransfer:
    def test_manual_tick_calls_the_override(self) -> None:
        link = CountingLink(ListInlet([1]), RecordingOutlet(), 60)
        planner = ManualPlanner(link, immediate_transfer=False)
        planner.start()
        try:
            planner.tick(link)
            planner.tick(link)
        finally:
            planner.shutdown()
        assert link.calls == 2

    @pytest.mark.parametrize(
        "make", [ApsPlanner, lambda link: SchedulePlanner(link, refresh_interval=0.05)]
    )
    def test_built_in_planners_call_the_override(
        self, make: Any, planners: list[BasePlanner], wait_until: Callable[..., None]
    ) -> None:
        link = CountingLink(ListInlet([1]), RecordingOutlet(), 0.05)
        planner = make(link)
        planners.append(planner)
        planner.start(block=False)
        wait_until(lambda: link.calls >= 2, message="two transfers through the override")
        outlet = link.outlets[0]
        assert isinstance(outlet, RecordingOutlet)
        planner.shutdown()
        assert len(outlet.batches) == link.calls

    def test_tick_while_the_link_transfers_is_skipped_and_counted(self) -> None:
        outlet = GateOutlet()
        link = CountingLink(ListInlet([1]), outlet, 60)
        planner = ManualPlanner(link, immediate_transfer=False)
        planner.start()
        try:
            first, first_done = in_thread(lambda: planner.tick(link))
            assert outlet.entered.wait(10)
            planner.tick(link)  # the first is still in the outlet: skipped at once
            assert link.metrics.skipped == 1
            assert link.calls == 1
            outlet.release.set()
            assert first_done.wait(10)
            first.join(10)
        finally:
            planner.shutdown()

    def test_tick_during_a_force_transfer_is_skipped(self) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 60)
        planner = ManualPlanner(link, immediate_transfer=False)
        planner.start()
        try:
            forced, forced_done = in_thread(planner.force_transfer)
            assert outlet.entered.wait(10)
            planner.tick(link)
            assert link.metrics.skipped == 1
            outlet.release.set()
            assert forced_done.wait(10)
            forced.join(10)
        finally:
            planner.shutdown()


class TestShutdownOfAStoppedPlanner:
    def test_stops_the_scheduler_and_nodes_started_by_hand(self) -> None:
        outlet = RecordingOutlet()
        link = Link(ListInlet([1]), outlet, 60)
        planner = BackgroundPlanner(link)
        link.on_start()  # started by hand, planner never started
        assert outlet.active
        planner.shutdown(wait=False)
        assert planner.scheduler_stops == [False]
        assert not outlet.active
        assert outlet.shutdowns == 1
        assert planner.state is PlannerState.STOPPED

    def test_calls_an_overridden_on_shutdown(self) -> None:
        calls: list[str] = []

        class Noting(Link):
            __slots__ = ()

            def on_shutdown(self) -> None:
                calls.append("on_shutdown")
                super().on_shutdown()

        planner = ManualPlanner(Noting(ListInlet([1]), RecordingOutlet(), 60))
        planner.shutdown()
        assert calls == ["on_shutdown"]
        planner.start()  # still startable afterwards
        assert planner.running
        planner.shutdown()


class TestPauseResumeDuringStart:
    def _slow_start(self) -> tuple[ApsPlanner, threading.Event, threading.Event]:
        """An ApsPlanner whose start() waits in a node's on_start until released."""
        entered, release = threading.Event(), threading.Event()

        class SlowInlet(ListInlet):
            def on_start(self) -> None:
                entered.set()
                assert release.wait(10)

        return ApsPlanner(Link(SlowInlet([1]), RecordingOutlet(), 60)), entered, release

    @pytest.mark.parametrize(
        ("actions", "state"), [(["pause"], STATE_PAUSED), (["pause", "resume"], STATE_RUNNING)]
    )
    def test_applied_once_the_scheduler_runs(
        self, actions: list[str], state: int, wait_until: Callable[..., None]
    ) -> None:
        planner, entered, release = self._slow_start()
        thread = threading.Thread(target=planner.start, daemon=True)
        thread.start()
        assert entered.wait(10)
        assert planner.state is PlannerState.STARTING
        for action in actions:
            getattr(planner, action)()  # no PlannerStateError while starting
        release.set()
        wait_until(lambda: planner.running, message="the planner to run")
        assert planner._scheduler is not None
        assert planner._scheduler.state == state
        planner.shutdown(wait=False)
        thread.join(10)
        assert not thread.is_alive()

    def test_pause_before_the_start_thread_ran(self, wait_until: Callable[..., None]) -> None:
        planner = ApsPlanner(Link(ListInlet([1]), RecordingOutlet(), 60))
        starter = HeldThread(planner.start)
        starter.start()  # alive, start() not called yet
        pauser, paused = in_thread(planner.pause)
        assert not paused.wait(0.05)  # waits for start() to begin instead of raising
        starter.go.set()
        assert paused.wait(10)
        wait_until(lambda: planner.running, message="the planner to run")
        assert planner._scheduler is not None
        assert planner._scheduler.state == STATE_PAUSED
        planner.shutdown(wait=False)
        starter.join(10)
        pauser.join(10)
        assert not starter.is_alive()

    def test_shutdown_before_the_start_thread_ran(self) -> None:
        inlet = ListInlet([1])
        planner = ApsPlanner(Link(inlet, RecordingOutlet(), 60))
        starter = HeldThread(planner.start)
        starter.start()
        stopper, stopped = in_thread(planner.shutdown)
        starter.go.set()
        assert stopped.wait(10)
        starter.join(10)
        stopper.join(10)
        assert not starter.is_alive(), "start() kept running after shutdown()"
        assert planner.state is PlannerState.STOPPED
        assert not inlet.active

    @pytest.mark.parametrize("action", ["pause", "resume"])
    def test_still_refused_on_a_stopped_planner(self, action: str) -> None:
        planner = ApsPlanner()
        planner.start(block=False)
        planner.shutdown()
        with pytest.raises(PlannerStateError, match=rf"cannot {action}.*stopped"):
            getattr(planner, action)()
