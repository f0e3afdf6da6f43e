"""Link.on_start/on_shutdown: nodes started once, shared nodes, failures, in-flight transfers."""

from __future__ import annotations

import threading

import pytest
from core_fakes import GateOutlet, ListInlet, RecordingOutlet

from databay_bus import Link
from databay_bus.link import shutdown_links


class BrokenStart(RecordingOutlet):
    def on_start(self) -> None:
        super().on_start()
        raise OSError("cannot connect")


class BrokenShutdown(ListInlet):
    def on_shutdown(self) -> None:
        super().on_shutdown()
        raise OSError("cannot close")


class TestStartShutdown:
    def test_nodes_started_and_shut_down_once(self) -> None:
        log: list[str] = []
        inlet, outlet = ListInlet(name="in", log=log), RecordingOutlet(name="out", log=log)
        link = Link(inlet, outlet, 1)
        assert not inlet.active and not outlet.active
        link.on_start()
        link.on_start()
        assert inlet.active and outlet.active
        link.on_shutdown()
        link.on_shutdown()
        assert not inlet.active and not outlet.active
        assert log == ["start:in", "start:out", "shutdown:in", "shutdown:out"]

    def test_shared_node_stays_up_until_its_last_link_stops(self) -> None:
        shared = RecordingOutlet()
        first = Link(ListInlet(), shared, 1)
        second = Link(ListInlet(), shared, 1)
        first.on_start()
        second.on_start()
        first.on_shutdown()
        assert shared.active
        assert (shared.starts, shared.shutdowns) == (1, 0)
        second.on_shutdown()
        assert not shared.active
        assert (shared.starts, shared.shutdowns) == (1, 1)

    def test_nodes_added_to_a_started_link_are_started(self) -> None:
        link = Link([], [], 1)
        link.on_start()
        inlet, outlet = ListInlet(), RecordingOutlet()
        link.add_inlets(inlet)
        link.add_outlets(outlet)
        assert inlet.active and outlet.active
        link.remove_inlets(inlet)
        link.remove_outlets(outlet)
        assert not inlet.active and not outlet.active
        assert (inlet.starts, inlet.shutdowns, outlet.starts, outlet.shutdowns) == (1, 1, 1, 1)

    def test_removed_node_held_by_another_link_stays_up(self) -> None:
        shared = ListInlet()
        first, second = Link(shared, [], 1), Link(shared, [], 1)
        first.on_start()
        second.on_start()
        first.remove_inlets(shared)
        assert shared.active
        second.on_shutdown()
        assert not shared.active

    def test_nodes_of_a_stopped_link_are_not_started_on_add(self) -> None:
        link = Link([], [], 1)
        inlet = ListInlet()
        link.add_inlets(inlet)
        assert not inlet.active


class TestLifecycleFailures:
    def test_failed_start_raises_and_undoes(self) -> None:
        inlet, outlet = ListInlet(), BrokenStart()
        link = Link(inlet, outlet, 1)
        with pytest.raises(OSError, match="cannot connect"):
            link.on_start()
        assert not inlet.active and not outlet.active
        assert inlet.shutdowns == 1
        # the link is not started: a later on_start tries again
        with pytest.raises(OSError):
            link.on_start()
        assert inlet.starts == 2

    def test_failed_start_ignored_starts_the_others(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        inlet, broken, healthy = ListInlet(), BrokenStart(), RecordingOutlet()
        link = Link(inlet, [broken, healthy], 1, ignore_exceptions=True)
        link.on_start()
        assert inlet.active and healthy.active and not broken.active
        assert "on_start" in databay_logs.text and "cannot connect" in databay_logs.text
        link.on_shutdown()
        assert not inlet.active and not healthy.active

    def test_failed_shutdown_still_shuts_the_others_and_raises(self) -> None:
        broken, other = BrokenShutdown(), RecordingOutlet()
        link = Link(broken, other, 1)
        link.on_start()
        with pytest.raises(OSError, match="cannot close"):
            link.on_shutdown()
        assert not broken.active and not other.active
        assert other.shutdowns == 1

    def test_failed_shutdown_ignored_is_logged(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        link = Link(BrokenShutdown(), RecordingOutlet(), 1, ignore_exceptions=True)
        link.on_start()
        link.on_shutdown()
        assert "on_shutdown" in databay_logs.text and "cannot close" in databay_logs.text


class TestShutdownDuringTransfer:
    def test_nodes_shut_down_after_the_transfer_in_flight(self) -> None:
        log: list[str] = []
        outlet = GateOutlet(name="gate", log=log)
        link = Link(ListInlet([1], name="in", log=log), outlet, 1)
        link.on_start()
        thread = threading.Thread(target=link.transfer)
        thread.start()
        try:
            assert outlet.entered.wait(10)
            link.on_shutdown()  # returns at once; nodes are released when the transfer ends
            assert outlet.active
        finally:
            outlet.release.set()
            thread.join(10)
        assert outlet.active_during_push == [True]
        assert not outlet.active
        assert log.index("push-end:gate") < log.index("shutdown:gate")
        assert log[-2:] == ["shutdown:in", "shutdown:gate"]

    def test_restart_before_the_transfer_ends_keeps_nodes_up(self) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 1)
        link.on_start()
        thread = threading.Thread(target=link.transfer)
        thread.start()
        try:
            assert outlet.entered.wait(10)
            link.on_shutdown()
            link.on_start()
        finally:
            outlet.release.set()
            thread.join(10)
        assert outlet.active
        assert (outlet.starts, outlet.shutdowns) == (1, 0)
        link.on_shutdown()
        assert not outlet.active


class TestShutdownLinks:
    """shutdown_links: what a planner calls when it stops, for all its links at once."""

    def test_shared_and_own_nodes_each_shut_down_once(self) -> None:
        shared_in, shared_out = ListInlet(name="shared-in"), RecordingOutlet(name="shared-out")
        own = [RecordingOutlet(name=f"own-{n}") for n in range(3)]
        links = [Link(shared_in, [shared_out, outlet], 1) for outlet in own]
        for link in links:
            link.on_start()
        shutdown_links(links)
        assert (shared_in.shutdowns, shared_out.shutdowns) == (1, 1)
        assert [outlet.shutdowns for outlet in own] == [1, 1, 1]
        assert not any(node.active for node in [shared_in, shared_out, *own])
        shutdown_links(links)  # already stopped: nothing runs twice
        assert shared_in.shutdowns == 1

    def test_a_node_held_by_a_link_left_running_stays_up(self) -> None:
        shared = RecordingOutlet()
        stopping, staying = Link(ListInlet(), shared, 1), Link(ListInlet(), shared, 1)
        stopping.on_start()
        staying.on_start()
        shutdown_links([stopping])
        assert shared.active and shared.shutdowns == 0
        staying.on_shutdown()
        assert shared.shutdowns == 1

    def test_failing_node_is_logged_and_the_others_still_shut_down(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        broken, outlet = BrokenShutdown(name="broken"), RecordingOutlet()
        links = [Link(broken, outlet, 1), Link(ListInlet(), outlet, 1)]
        for link in links:
            link.on_start()
        shutdown_links(links)  # does not raise
        assert outlet.shutdowns == 1 and not broken.active
        assert "cannot close" in caplog.text

    def test_link_in_flight_releases_its_nodes_when_the_transfer_ends(self) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 1)
        link.on_start()
        worker = threading.Thread(target=link.transfer)
        worker.start()
        assert outlet.entered.wait(10)
        shutdown_links([link])
        assert outlet.active  # still pushing
        outlet.release.set()
        worker.join(10)
        assert not outlet.active and outlet.shutdowns == 1

    def test_overrides_of_try_shutdown_and_on_shutdown_are_honoured(self) -> None:
        calls: list[str] = []

        class CountingRelease(RecordingOutlet):
            def try_shutdown(self, holder: object = None) -> bool:
                calls.append("try_shutdown")
                return super().try_shutdown(holder)

        class OwnShutdownLink(Link):
            def on_shutdown(self) -> None:
                calls.append("link.on_shutdown")
                super().on_shutdown()

        outlet = CountingRelease()
        links = [Link(ListInlet(), outlet, 1), OwnShutdownLink(ListInlet(), RecordingOutlet(), 1)]
        links.append(Link(ListInlet(), outlet, 1))
        for link in links:
            link.on_start()
        shutdown_links(links)
        assert calls.count("try_shutdown") == 2 and "link.on_shutdown" in calls
        assert outlet.shutdowns == 1


def test_try_shutdown_after_many_holders_left() -> None:
    """A node released by 10,000 links, then held and released again, behaves the same."""
    inlet = ListInlet()
    holders = [object() for _ in range(10_000)]
    for holder in holders:
        inlet.try_start(holder)
    assert [inlet.try_shutdown(h) for h in holders].count(True) == 1
    assert inlet.try_shutdown(holders[0]) is False
    assert inlet.try_start(holders[0]) and inlet.active
    assert inlet.try_shutdown(holders[0]) and inlet.shutdowns == 2
