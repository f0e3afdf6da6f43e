"""A node shared by links in different planners is started once and shut down once."""

from __future__ import annotations

from collections.abc import Callable

from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link
from databay_bus.planners import ApsPlanner, SchedulePlanner


def test_node_shared_by_two_links_in_two_planners(wait_until: Callable[..., None]) -> None:
    shared_inlet = ListInlet([1], name="shared-in")
    shared_outlet = RecordingOutlet(name="shared-out")
    first = Link(shared_inlet, shared_outlet, 0.1, tags="first")
    second = Link(shared_inlet, shared_outlet, 0.1, tags="second")
    aps = ApsPlanner(first, threads=2)
    sched = SchedulePlanner(second, threads=2, refresh_interval=0.05)
    aps.start(block=False)
    sched.start(block=False)
    try:
        tags = lambda: {u.tags[0] for u in shared_outlet.updates}  # noqa: E731
        wait_until(lambda: tags() == {"first", "second"}, message="both links transferred")
        assert (shared_inlet.starts, shared_outlet.starts) == (1, 1)
        aps.shutdown()
        assert shared_inlet.active and shared_outlet.active  # the other planner still uses them
        assert (shared_inlet.shutdowns, shared_outlet.shutdowns) == (0, 0)
        count = len(shared_outlet.batches)
        wait_until(lambda: len(shared_outlet.batches) >= count + 2, message="second keeps going")
    finally:
        aps.shutdown()
        sched.shutdown()
    assert (shared_inlet.starts, shared_inlet.shutdowns) == (1, 1)
    assert (shared_outlet.starts, shared_outlet.shutdowns) == (1, 1)
    assert not shared_inlet.active and not shared_outlet.active


def test_node_shared_by_links_added_after_start() -> None:
    shared = RecordingOutlet()
    planner = ApsPlanner(threads=2)
    other = SchedulePlanner(threads=2, refresh_interval=0.05)
    planner.start(block=False)
    other.start(block=False)
    try:
        planner.add_links(Link(ListInlet([1]), shared, 30))
        other.add_links(Link(ListInlet([2]), shared, 30))
        assert shared.active and shared.starts == 1
        assert shared.pushed.wait(10)
        other.shutdown()
        assert shared.active and shared.shutdowns == 0
    finally:
        planner.shutdown()
        other.shutdown()
    assert (shared.starts, shared.shutdowns) == (1, 1)


def test_two_links_in_one_planner_share_an_outlet() -> None:
    shared = RecordingOutlet()
    links = [Link(ListInlet([n]), shared, 30) for n in range(3)]
    with ApsPlanner(links, threads=3):
        assert shared.starts == 1
    assert (shared.starts, shared.shutdowns) == (1, 1)
