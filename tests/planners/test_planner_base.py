"""BasePlanner's lifecycle and link management, driven through a hand-ticked subclass."""

from __future__ import annotations

import copy
import gc
import logging
import threading
import weakref
from collections.abc import Callable

import pytest
from core_fakes import FailingInlet, GateOutlet, ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import BasePlanner, Link
from databay_bus.errors import InvalidLinkError, MissingLinkError, PlannerStateError
from databay_bus.planners import PlannerState


def make_link(**kwargs: object) -> Link:
    return Link(ListInlet([1]), RecordingOutlet(), 1, **kwargs)  # type: ignore[arg-type]


def outlet_of(link: Link) -> RecordingOutlet:
    outlet = link.outlets[0]
    assert isinstance(outlet, RecordingOutlet)
    return outlet


class TestLinks:
    def test_defaults(self) -> None:
        planner = ManualPlanner()
        assert planner.links == []
        assert planner.ignore_exceptions is False
        assert planner.immediate_transfer is True
        assert planner.shutdown_at_exit is False
        assert planner.running is False
        assert planner.state is PlannerState.STOPPED

    def test_links_in_constructor_are_scheduled(self) -> None:
        links = [make_link(), make_link()]
        planner = ManualPlanner(links)
        assert planner.links == links
        assert planner.scheduled == links
        assert all(link.job is not None for link in links)

    @pytest.mark.parametrize("bad", [object(), "link", None, ListInlet()])
    def test_non_links_rejected(self, bad: object) -> None:
        planner = ManualPlanner()
        with pytest.raises(InvalidLinkError, match=r"links\[1\] must be a Link") as caught:
            planner.add_links([make_link(), bad])  # type: ignore[list-item]
        assert isinstance(caught.value, TypeError)  # Databay raised TypeError
        assert type(bad).__name__ in str(caught.value)
        assert planner.links == []

    def test_duplicate_links_rejected(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        with pytest.raises(InvalidLinkError, match="already"):
            planner.add_links(link)
        other = make_link()
        with pytest.raises(InvalidLinkError, match="already"):
            planner.add_links([other, other])
        assert planner.links == [link]

    def test_remove_links(self) -> None:
        links = [make_link(), make_link(), make_link()]
        planner = ManualPlanner(links)
        planner.remove_links([links[0], links[2]])
        assert planner.links == [links[1]]
        assert planner.scheduled == [links[1]]
        assert links[0].job is None and links[2].job is None

    def test_remove_missing_rejected_atomically(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        with pytest.raises(MissingLinkError, match=r"links\[1\].*not in this planner") as caught:
            planner.remove_links([link, make_link()])
        assert isinstance(caught.value, RuntimeError)  # Databay's base
        assert planner.links == [link]

    def test_purge(self) -> None:
        links = [make_link(), make_link()]
        planner = ManualPlanner(links)
        planner.purge()
        assert planner.links == []
        assert planner.scheduled == []
        assert all(link.job is None for link in links)


class TestStartShutdown:
    def test_start_starts_nodes_then_immediate_transfers_then_scheduler(self) -> None:
        log: list[str] = []
        outlet = RecordingOutlet(name="out", log=log)
        link = Link(ListInlet([1], name="in", log=log), outlet, 1)
        planner = ManualPlanner(link)
        planner.start(block=False)
        try:
            assert planner.running
            assert planner.state is PlannerState.RUNNING
            assert planner.started_scheduler == 1
            assert log == ["start:in", "start:out", "pull:in", "push:out:[1]"]
        finally:
            planner.shutdown()
        assert log[-2:] == ["shutdown:in", "shutdown:out"]
        assert planner.stopped_scheduler == [True]
        assert planner.state is PlannerState.STOPPED

    def test_start_on_running_planner_raises(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        planner.start(block=False)
        try:
            with pytest.raises(PlannerStateError, match=r"ManualPlanner.*running"):
                planner.start(block=False)
            assert outlet_of(link).payloads == [[1]]  # no second immediate transfer
        finally:
            planner.shutdown()

    def test_shutdown_is_idempotent(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        planner.shutdown()  # never started: the scheduler is still told to stop
        planner.start(block=False)
        planner.shutdown(wait=False)
        planner.shutdown()
        assert planner.stopped_scheduler == [True, False, True]
        assert planner.state is PlannerState.STOPPED
        assert (outlet_of(link).starts, outlet_of(link).shutdowns) == (1, 1)

    def test_planner_can_start_again(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        for _ in range(2):
            planner.start(block=False)
            planner.shutdown()
        outlet = outlet_of(link)
        assert (outlet.starts, outlet.shutdowns) == (2, 2)
        assert outlet.payloads == [[1], [1]]

    def test_context_manager(self) -> None:
        link = make_link()
        with ManualPlanner(link) as planner:
            assert planner.running
            assert outlet_of(link).active
        assert not planner.running
        assert not outlet_of(link).active

    def test_blocking_start_returns_after_shutdown(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        done = threading.Event()

        def run() -> None:
            planner.start(block=True)  # blocks: asked for explicitly
            done.set()

        thread = threading.Thread(target=run)
        thread.start()
        assert outlet_of(link).pushed.wait(10)
        assert not done.is_set()
        planner.shutdown()
        assert done.wait(10)
        thread.join(10)

    def test_wait(self) -> None:
        planner = ManualPlanner()
        assert planner.wait(0)
        planner.start(block=False)
        assert not planner.wait(0.01)
        threading.Timer(0.01, planner.shutdown).start()
        assert planner.wait(10)

    def test_repr(self) -> None:
        assert repr(ManualPlanner(make_link())) == "ManualPlanner(links=1, state=stopped)"


class TestImmediateTransfer:
    def test_only_links_that_want_it(self) -> None:
        eager, lazy = make_link(), make_link(immediate_transfer=False)
        with ManualPlanner([eager, lazy]):
            assert outlet_of(eager).payloads == [[1]]
            assert outlet_of(lazy).payloads == []

    def test_planner_level_switch(self) -> None:
        link = make_link()
        with ManualPlanner(link, immediate_transfer=False):
            assert outlet_of(link).payloads == []


class TestRunningChanges:
    def test_add_links_while_running_starts_their_nodes(self) -> None:
        planner = ManualPlanner()
        with planner:
            link = make_link()
            planner.add_links(link)
            assert outlet_of(link).active
            assert planner.scheduled == [link]
            planner.tick(link)
            assert outlet_of(link).payloads == [[1]]
        assert not outlet_of(link).active

    def test_remove_links_while_running_shuts_nodes(self) -> None:
        kept, removed = make_link(), make_link()
        planner = ManualPlanner([kept, removed])
        with planner:
            planner.remove_links(removed)
            assert not outlet_of(removed).active
            assert outlet_of(kept).active
            assert planner.scheduled == [kept]

    def test_removed_link_nodes_wait_for_its_transfer(self) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 1)
        planner = ManualPlanner(link, immediate_transfer=False)
        with planner:
            thread = threading.Thread(target=planner.tick, args=(link,))
            thread.start()
            assert outlet.entered.wait(10)
            planner.remove_links(link)
            assert outlet.active
            outlet.release.set()
            thread.join(10)
            assert not outlet.active
            assert outlet.active_during_push == [True]

    def test_purge_while_running(self) -> None:
        link = make_link()
        planner = ManualPlanner(link)
        with planner:
            planner.purge()
            assert not outlet_of(link).active
            assert planner.running


class TestForceTransfer:
    def test_works_before_start_and_after_shutdown(self) -> None:
        links = [make_link(), make_link()]
        planner = ManualPlanner(links)
        planner.force_transfer()
        with planner:
            planner.force_transfer()
        planner.force_transfer()
        assert [outlet_of(link).payloads for link in links] == [[[1]] * 4] * 2

    def test_errors_are_logged_and_other_links_still_run(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        broken = Link(FailingInlet(ValueError("boom")), RecordingOutlet(), 1)
        healthy = make_link()
        planner = ManualPlanner([broken, healthy])
        planner.force_transfer()
        assert outlet_of(healthy).payloads == [[1]]
        assert "ValueError raised when executing" in databay_logs.text
        line = next(r for r in databay_logs.records if "raised when executing" in r.getMessage())
        assert line.getMessage().endswith(': "boom"')  # the error's text, not only its type


class TestExceptions:
    def failing_link(self, **kwargs: object) -> Link:
        return Link(FailingInlet(ValueError("boom")), RecordingOutlet(), 1, **kwargs)  # type: ignore[arg-type]

    def test_ignored_by_planner_logs_and_keeps_running(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        link = self.failing_link(tags="bad")
        with ManualPlanner(link, ignore_exceptions=True) as planner:
            planner.tick(link)
            planner.tick(link)
            assert planner.running
        errors = [r for r in databay_logs.records if r.levelno == logging.ERROR]
        assert len(errors) == 1  # one failure streak: the two ticks' failures are not repeated
        assert "tags:['bad']" in errors[0].getMessage()
        assert errors[0].exc_info is not None

    def test_unignored_logs_and_shuts_down_gracefully(
        self, databay_logs: pytest.LogCaptureFixture, wait_until: Callable[..., None]
    ) -> None:
        link = self.failing_link()
        planner = ManualPlanner(link, immediate_transfer=False)
        planner.start(block=False)
        planner.tick(link)
        assert planner.wait(10)
        assert not link.outlets[0].active
        assert planner.stopped_scheduler == [False]
        assert "ValueError raised when executing" in databay_logs.text

    def test_link_level_ignore_keeps_the_planner_out_of_it(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        link = self.failing_link(ignore_exceptions=True)
        with ManualPlanner(link) as planner:
            planner.tick(link)
            assert planner.running
        assert "raised when executing" not in databay_logs.text
        assert "failed; ignored" in databay_logs.text

    def test_failing_immediate_transfer_stops_the_planner_and_its_nodes(self) -> None:
        healthy = make_link()
        planner = ManualPlanner([self.failing_link(), healthy])
        planner.start(block=False)
        assert planner.wait(10)
        assert not planner.running
        assert not outlet_of(healthy).active
        assert planner.started_scheduler == 0
        assert planner.state is PlannerState.STOPPED

    def test_failing_on_start_aborts_start(self, databay_logs: pytest.LogCaptureFixture) -> None:
        class BrokenStart(RecordingOutlet):
            def on_start(self) -> None:
                raise OSError("no db")

        healthy = make_link()
        broken = Link(ListInlet(), BrokenStart(), 1)
        planner = ManualPlanner([healthy, broken])
        planner.start(block=False)
        assert planner.state is PlannerState.STOPPED
        assert planner.started_scheduler == 0
        assert not outlet_of(healthy).active
        assert outlet_of(healthy).shutdowns == 1
        assert "no db" in databay_logs.text

    def test_failing_on_start_ignored_by_planner(self) -> None:
        class BrokenStart(RecordingOutlet):
            def on_start(self) -> None:
                raise OSError("no db")

        healthy = make_link()
        planner = ManualPlanner([healthy, Link(ListInlet(), BrokenStart(), 1)])
        planner.ignore_exceptions = True
        with planner:
            assert planner.running
            assert outlet_of(healthy).active

    def test_failing_on_shutdown_is_logged_and_others_shut_down(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        class BrokenShutdown(RecordingOutlet):
            def on_shutdown(self) -> None:
                raise OSError("close failed")

        healthy = make_link()
        planner = ManualPlanner([Link(ListInlet(), BrokenShutdown(), 1), healthy])
        planner.start(block=False)
        planner.shutdown()
        assert not outlet_of(healthy).active
        assert planner.state is PlannerState.STOPPED
        assert "close failed" in databay_logs.text


class TestShutdownAtExit:
    def test_flag(self) -> None:
        planner = ManualPlanner(shutdown_at_exit=True)
        assert planner.shutdown_at_exit is True
        planner.shutdown_at_exit = False
        assert planner.shutdown_at_exit is False

    @pytest.mark.parametrize("at_exit", [True, False])
    def test_dropped_planner_is_garbage_collected(self, at_exit: bool) -> None:
        planner = ManualPlanner(make_link(), shutdown_at_exit=at_exit)
        planner.start(block=False)
        planner.shutdown()
        ref = weakref.ref(planner)
        del planner
        gc.collect()
        assert ref() is None


class BlockingStylePlanner(BasePlanner):
    """A Databay-style subclass whose ``_start_planner`` blocks until shutdown."""

    _start_planner_blocks = True

    def __init__(self, links: Link | list[Link] | None = None, **kwargs: object) -> None:
        self._stop = threading.Event()
        self.loop_ran = threading.Event()
        super().__init__(links, **kwargs)  # type: ignore[arg-type]

    def _schedule(self, link: Link) -> None:
        link.set_job(link)

    def _unschedule(self, link: Link) -> None:
        link.set_job(None)

    def _start_planner(self) -> None:
        self._stop.clear()
        self.loop_ran.set()
        self._stop.wait(30)

    def _shutdown_planner(self, wait: bool = True) -> None:
        self._stop.set()


class TestBlockingStyleSubclass:
    def test_background_start_runs_the_blocking_loop_on_a_thread(self) -> None:
        link = make_link()
        planner = BlockingStylePlanner(link)
        planner.start(block=False)
        assert planner.loop_ran.wait(10)
        assert planner.running
        planner.shutdown()
        assert not planner.running
        assert outlet_of(link).payloads == [[1]]

    def test_failing_immediate_transfer_never_starts_the_loop(self) -> None:
        link = Link(FailingInlet(), RecordingOutlet(), 1)
        planner = BlockingStylePlanner(link)
        done = threading.Event()
        thread = threading.Thread(target=lambda: (planner.start(), done.set()))
        thread.start()
        assert done.wait(10), "start() kept blocking after the planner shut down"
        thread.join(10)
        assert not planner.running
        assert not link.outlets[0].active


def test_links_is_a_snapshot_that_refuses_changes() -> None:
    """``planner.links`` compares and iterates like a list; changing it raises instead of
    silently changing a copy (Databay's list let a removed link keep its job)."""
    first = Link(ListInlet([1]), RecordingOutlet(), 1)
    planner = ManualPlanner(first)
    links = planner.links
    assert links == [first] and first in links and len(links) == 1
    for change in (
        lambda: links.remove(first),
        lambda: links.append(first),
        lambda: links.clear(),
        lambda: links.pop(),
        lambda: links.__setitem__(0, first),
        lambda: links.__delitem__(0),
    ):
        with pytest.raises(TypeError, match="remove_links"):
            change()
    assert planner.links == [first]
    mine = copy.copy(links)  # copies are plain lists, the caller's to change
    mine.append(first)
    assert len(mine) == 2 and [*links, first] == mine
    planner.remove_links(first)
    assert planner.links == [] and links == [first]  # the snapshot did not change


def test_a_mock_of_link_goes_through_start_and_shutdown() -> None:
    """Tests written for Databay hand planners ``MagicMock(spec=Link)``: the planner calls the
    mock's on_start, transfer and on_shutdown as it would a link's."""
    from datetime import timedelta
    from unittest.mock import MagicMock

    link = MagicMock(spec=Link)
    link.interval = timedelta(seconds=10)
    link.immediate_transfer = True
    planner = ManualPlanner(link)
    planner.start()
    planner.force_transfer()
    planner.shutdown()
    link.on_start.assert_called_once()
    link.transfer.assert_called()
    link.on_shutdown.assert_called_once()


def test_the_planner_knows_its_links_queues_as_they_come_and_go() -> None:
    """Queue maintenance asks the planner for its queues instead of walking every link."""
    from databay_bus.queue import MemoryQueue

    first, second = MemoryQueue(), MemoryQueue()
    a1, a2 = (Link(ListInlet([1]), RecordingOutlet(), 60, queue=first, tags=t) for t in "xy")
    b = Link(ListInlet([1]), RecordingOutlet(), 60, queue=second, tags="z")
    plain = Link(ListInlet([1]), RecordingOutlet(), 60)
    planner = ManualPlanner([a1, plain, b])
    planner.add_links(a2)
    assert planner._link_queues() == [first, second]
    planner.start(block=False)
    try:
        assert planner._maintenance is not None
        assert planner._maintenance.queues() == [first, second]
        planner.remove_links([b, a1])
        assert planner._maintenance.queues() == [first]
        planner.remove_links(a2)
        assert planner._maintenance.queues() == []
    finally:
        planner.shutdown()


def test_links_keep_their_order_through_removals() -> None:
    links = [Link(ListInlet([1]), RecordingOutlet(), 60) for _ in range(5)]
    planner = ManualPlanner(links)
    planner.remove_links([links[3], links[1], links[3]])  # listed twice: removed once
    assert planner.links == [links[0], links[2], links[4]]
    planner.add_links(links[1])
    assert planner.links == [links[0], links[2], links[4], links[1]]
    with pytest.raises(MissingLinkError):
        planner.remove_links(links[3])
    planner.purge()
    assert planner.links == []
