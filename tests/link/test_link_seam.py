"""What a delivery may use of its link: ``Link.emit`` and the ``Update`` module."""

from __future__ import annotations

from typing import Any

from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link
from databay_bus.observers import DeliveryFailed, Event


def test_emit_builds_the_event_for_listeners_only() -> None:
    """emit() calls the event factory with the link first, and not at all without listeners."""
    link = Link(ListInlet([1]), RecordingOutlet(), interval=1)
    built: list[tuple[Any, ...]] = []

    def factory(*args: Any) -> Event:
        built.append(args)
        return DeliveryFailed(*args)

    error = RuntimeError("down")
    link.emit(factory, "out", 2, error)
    assert built == []
    heard: list[Event] = []
    link.add_listener(heard.append)
    link.emit(factory, "out", 2, error)
    assert built == [(link, "out", 2, error)]
    assert heard == [DeliveryFailed(link, "out", 2, error, at=heard[0].at)]


def test_update_is_one_class_under_both_names() -> None:
    """databay_bus.link.Update (Databay's spelling) is databay_bus.update.Update."""
    import databay_bus
    import databay_bus.link
    import databay_bus.update

    assert databay_bus.link.Update is databay_bus.update.Update is databay_bus.Update
    assert databay_bus.link.Processor is databay_bus.update.Processor


def test_planners_share_one_listener_tuple_beside_a_links_own() -> None:
    """A planner's links keep its one listener tuple; a link's own listener still hears, and
    removing the link from the planner leaves only that one."""
    from databay_bus.planners import SchedulePlanner

    own: list[Event] = []
    listening = Link(ListInlet([1]), RecordingOutlet(), interval=1)
    listening.add_listener(own.append)
    plain = Link(ListInlet([1]), RecordingOutlet(), interval=1)
    other = Link(ListInlet([1]), RecordingOutlet(), interval=1)
    planner = SchedulePlanner([plain, other, listening])
    assert plain._listeners is other._listeners
    assert len(listening._listeners) == 2
    listening.emit(DeliveryFailed, "out", 1, RuntimeError("down"))
    assert len(own) == 1
    planner.remove_links([listening, plain])
    assert listening._listeners == (own.append,)
    assert plain._listeners == ()
