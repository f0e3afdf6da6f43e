"""Behaviour both built-in planners share, checked by running real links at short intervals.

Every wait is on an event or ``wait_until`` with a generous timeout; no assertion depends on
how fast the machine is.
"""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from core_fakes import FailingInlet, GateOutlet, ListInlet, RecordingOutlet, recording_link

from databay_bus import BasePlanner, Link
from databay_bus.errors import PlannerStateError
from databay_bus.planners import ApsPlanner, SchedulePlanner

Factory = Callable[..., BasePlanner]


def aps(links: Any = None, **kwargs: Any) -> BasePlanner:
    kwargs.setdefault("threads", 4)
    return ApsPlanner(links, **kwargs)


def schedule_planner(links: Any = None, **kwargs: Any) -> BasePlanner:
    kwargs.setdefault("threads", 4)
    kwargs.setdefault("refresh_interval", 0.05)
    return SchedulePlanner(links, **kwargs)


@pytest.fixture(params=[aps, schedule_planner], ids=["aps", "schedule"])
def make_planner(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """A planner factory; every planner it made is shut down after the test."""
    made: list[BasePlanner] = []

    def factory(links: Any = None, **kwargs: Any) -> BasePlanner:
        planner: BasePlanner = request.param(links, **kwargs)
        made.append(planner)
        return planner

    yield factory
    for planner in made:
        planner.shutdown(wait=False)


def next_run(link: Link) -> datetime:
    """When the link's job is next due, as an aware UTC datetime."""
    job = link.job
    assert job is not None
    if hasattr(job, "next_run_time"):  # APScheduler
        value: datetime = job.next_run_time
        return value.astimezone(timezone.utc)
    return job.next_run.astimezone(timezone.utc)  # type: ignore[no-any-return]


def test_runs_links_repeatedly(make_planner: Factory, wait_until: Callable[..., None]) -> None:
    link, outlet = recording_link(0.1, tags="ticker")
    planner = make_planner(link)
    planner.start(block=False)
    assert planner.running
    wait_until(lambda: len(outlet.batches) >= 3, message="three transfers")
    planner.shutdown()
    assert not planner.running
    numbers = [u.transfer_number for u in outlet.updates]
    assert numbers == list(range(len(numbers)))
    assert not outlet.active


def test_blocking_start_returns_after_shutdown_from_another_thread(
    make_planner: Factory,
) -> None:
    link, outlet = recording_link()
    planner = make_planner(link)
    returned = threading.Event()

    def run() -> None:
        planner.start()
        returned.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert outlet.pushed.wait(10)
    assert not returned.is_set()
    planner.shutdown()
    assert returned.wait(10)
    thread.join(10)


def test_context_manager_and_restart(
    make_planner: Factory, wait_until: Callable[..., None]
) -> None:
    link, outlet = recording_link()
    planner = make_planner(link)
    for round_number in (1, 2):
        with planner:
            wait_until(lambda n=round_number: outlet.starts == n and len(outlet.batches) >= n)
        assert not planner.running
    assert (outlet.starts, outlet.shutdowns) == (2, 2)


def test_start_on_running_planner_raises(make_planner: Factory) -> None:
    planner = make_planner(recording_link()[0])
    planner.start(block=False)
    with pytest.raises(PlannerStateError, match="running"):
        planner.start(block=False)
    with pytest.raises(PlannerStateError):
        planner.start()


class TestImmediateTransfer:
    def test_first_run_at_start_or_one_interval_later(
        self, make_planner: Factory, wait_until: Callable[..., None]
    ) -> None:
        eager, eager_out = recording_link(30)
        lazy, lazy_out = recording_link(30, immediate_transfer=False)
        planner = make_planner([eager, lazy])
        before = datetime.now(timezone.utc)
        planner.start(block=False)
        assert eager_out.pushed.wait(10)
        assert lazy_out.batches == []
        assert next_run(lazy) >= before + timedelta(seconds=29)
        wait_until(lambda: next_run(eager) >= before + timedelta(seconds=29))

    def test_planner_level_off(self, make_planner: Factory) -> None:
        link, outlet = recording_link(30)
        planner = make_planner(link, immediate_transfer=False)
        before = datetime.now(timezone.utc)
        planner.start(block=False)
        assert next_run(link) >= before + timedelta(seconds=29)
        assert outlet.batches == []

    def test_link_added_long_before_start_is_not_overdue(self, make_planner: Factory) -> None:
        link, _outlet = recording_link(30, immediate_transfer=False)
        planner = make_planner(link)
        assert link.job is None  # jobs are made at start(), not at add_links()
        before = datetime.now(timezone.utc)
        planner.start(block=False)
        assert next_run(link) >= before + timedelta(seconds=29)


class TestLinksWhileRunning:
    def test_added_link_is_started_and_transferred_at_once(self, make_planner: Factory) -> None:
        planner = make_planner()
        planner.start(block=False)
        link, outlet = recording_link(30)
        planner.add_links(link)
        assert outlet.active
        assert outlet.pushed.wait(10)  # the immediate transfer, not one 30 s interval later
        planner.shutdown()
        assert (outlet.starts, outlet.shutdowns) == (1, 1)

    def test_removed_link_stops_and_its_nodes_shut_down(
        self, make_planner: Factory, wait_until: Callable[..., None]
    ) -> None:
        kept, kept_out = recording_link(0.1)
        removed, removed_out = recording_link(0.1)
        planner = make_planner([kept, removed])
        planner.start(block=False)
        assert removed_out.pushed.wait(10)
        planner.remove_links(removed)
        assert removed.job is None
        wait_until(lambda: not removed_out.active)
        count = len(removed_out.batches)
        seen = len(kept_out.batches)
        wait_until(lambda: len(kept_out.batches) >= seen + 3, message="kept link keeps running")
        assert len(removed_out.batches) == count
        assert planner.links == [kept]

    def test_purge_while_running(
        self, make_planner: Factory, wait_until: Callable[..., None]
    ) -> None:
        link, outlet = recording_link(0.1)
        planner = make_planner(link)
        planner.start(block=False)
        assert outlet.pushed.wait(10)
        planner.purge()
        wait_until(lambda: not outlet.active)
        assert planner.running and planner.links == []


class TestOverlap:
    def test_overlapping_tick_is_skipped_and_logged(
        self,
        make_planner: Factory,
        wait_until: Callable[..., None],
        databay_logs: pytest.LogCaptureFixture,
    ) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 0.1, tags="slow")
        planner = make_planner(link)
        planner.start(block=False)
        assert outlet.entered.wait(10)

        def skipped() -> bool:
            return any(
                r.levelno == logging.WARNING and "skipped" in r.getMessage()
                for r in databay_logs.records
            )

        wait_until(skipped, message="a WARNING about a skipped tick")
        outlet.release.set()
        planner.shutdown()
        (warning, *_) = [r for r in databay_logs.records if "skipped" in r.getMessage()]
        assert warning.getMessage().startswith("slow: ")
        assert link.transfer_number == len(outlet.batches) - 1  # skipped ticks never started


class TestShutdown:
    def test_without_wait_returns_while_an_outlet_hangs(
        self, make_planner: Factory, wait_until: Callable[..., None]
    ) -> None:
        log: list[str] = []
        outlet = GateOutlet(name="gate", log=log)
        planner = make_planner(Link(ListInlet([1]), outlet, 0.1))
        planner.start(block=False)
        assert outlet.entered.wait(10)
        done = threading.Event()
        threading.Thread(target=lambda: (planner.shutdown(wait=False), done.set())).start()
        try:
            assert done.wait(10), "shutdown(wait=False) waited for a hung outlet"
            assert not planner.running
            assert outlet.active  # still in its transfer: not shut down under its feet
        finally:
            outlet.release.set()
        wait_until(lambda: not outlet.active)
        assert log.index("push-end:gate") < log.index("shutdown:gate")
        assert outlet.active_during_push[0] is True

    def test_with_wait_waits_for_the_transfer_in_flight(self, make_planner: Factory) -> None:
        log: list[str] = []
        outlet = GateOutlet(name="gate", log=log)
        planner = make_planner(Link(ListInlet([1]), outlet, 0.1))
        planner.start(block=False)
        assert outlet.entered.wait(10)
        thread = threading.Thread(target=planner.shutdown, kwargs={"wait": True})
        thread.start()
        thread.join(0.2)
        assert thread.is_alive(), "shutdown(wait=True) returned during a transfer"
        outlet.release.set()
        thread.join(10)
        assert not thread.is_alive()
        assert outlet.finished.is_set()
        assert not outlet.active
        assert log.index("push-end:gate") < log.index("shutdown:gate")

    def test_shutdown_called_from_inside_a_transfer(self, make_planner: Factory) -> None:
        planners: list[BasePlanner] = []
        log: list[str] = []

        def stop_on_second(records: Any, update: Any) -> None:
            if update.transfer_number == 1:
                planners[0].shutdown()  # wait=True, from the transfer's own worker thread

        outlet = RecordingOutlet(name="out", log=log, on_push=stop_on_second)
        planners.append(make_planner(Link(ListInlet([1]), outlet, 0.1)))
        planners[0].start(block=False)
        assert planners[0].wait(10), "shutdown from inside a transfer did not complete"
        assert log[-1] == "shutdown:out"


class TestExceptions:
    def test_planner_ignoring_keeps_scheduling(
        self,
        make_planner: Factory,
        wait_until: Callable[..., None],
        databay_logs: pytest.LogCaptureFixture,
    ) -> None:
        inlet = FailingInlet()
        planner = make_planner(Link(inlet, RecordingOutlet(), 0.1), ignore_exceptions=True)
        planner.start(block=False)
        wait_until(lambda: len(inlet.pulls) >= 3)
        assert planner.running
        assert "RuntimeError raised when executing" in databay_logs.text

    def test_unignored_error_shuts_down_gracefully(
        self, make_planner: Factory, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        calls = [0]

        def fail_on_third(update: Any) -> int:
            calls[0] += 1
            if calls[0] == 3:
                raise ValueError("third transfer failed")
            return calls[0]

        outlet = RecordingOutlet()
        planner = make_planner(Link(ListInlet(fail_on_third), outlet, 0.1))
        planner.start(block=False)
        assert planner.wait(10), "the planner did not shut down after the error"
        assert not outlet.active
        assert outlet.shutdowns == 1
        assert "third transfer failed" in databay_logs.text

    def test_blocking_start_returns_after_an_unignored_error(self, make_planner: Factory) -> None:
        planner = make_planner(Link(FailingInlet(), RecordingOutlet(), 0.1))
        done = threading.Event()
        thread = threading.Thread(target=lambda: (planner.start(), done.set()))
        thread.start()
        assert done.wait(10)
        thread.join(10)


class TestConstruction:
    def test_shutdown_at_exit_accepted(self, make_planner: Factory) -> None:
        assert make_planner(shutdown_at_exit=True).shutdown_at_exit is True
        assert make_planner().shutdown_at_exit is False

    def test_catch_exceptions_deprecated(self, make_planner: Factory) -> None:
        with pytest.warns(DeprecationWarning, match="catch_exceptions"):
            planner = make_planner(catch_exceptions=True)
        assert planner.ignore_exceptions is True

    @pytest.mark.parametrize("at_exit", [True, False])
    @pytest.mark.parametrize("factory", [aps, schedule_planner], ids=["aps", "schedule"])
    def test_dropped_planner_is_garbage_collected(self, factory: Factory, at_exit: bool) -> None:
        link, outlet = recording_link()
        planner = factory(link, shutdown_at_exit=at_exit)
        planner.start(block=False)
        assert outlet.pushed.wait(10)
        planner.shutdown()
        ref = weakref.ref(planner)
        del planner
        gc.collect()
        assert ref() is None

    @pytest.mark.parametrize("factory", [aps, schedule_planner], ids=["aps", "schedule"])
    def test_never_started_planner_is_garbage_collected(self, factory: Factory) -> None:
        ref = weakref.ref(factory(recording_link()[0], shutdown_at_exit=True))
        gc.collect()
        assert ref() is None
