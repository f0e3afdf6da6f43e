"""Observers: the events a planner emits, their order, and isolation from transfers."""

from __future__ import annotations

import logging
import threading

import pytest
from core_fakes import FailingOutlet, ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Link
from databay_bus.errors import ConfigurationError
from databay_bus.observers import (
    Event,
    LinkAdded,
    LinkRemoved,
    Observer,
    PlannerStarted,
    PlannerStopped,
    TransferCompleted,
    TransferFailed,
    TransferStarted,
)
from databay_bus.queue import MemoryQueue, RetryPolicy


class Recorder(Observer):
    """Keeps every event it is told about."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()

    def notify(self, event: Event) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def make_link(tags: str = "obs", ignore_exceptions: bool = False, outlet: object = None) -> Link:
    return Link(
        ListInlet([1, 2, 3]),
        outlet or RecordingOutlet(name="out"),
        interval=1,
        tags=tags,
        ignore_exceptions=ignore_exceptions,
    )


def test_events_of_a_planner_lifetime_arrive_in_order() -> None:
    """Link added, planner started, each transfer started then completed, removed, stopped."""
    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False)
    planner.add_observer(recorder)
    link = make_link()
    planner.add_links(link)
    planner.start(block=False)
    planner.tick(link)
    planner.tick(link)
    planner.remove_links(link)
    planner.shutdown()
    assert planner.flush_observers(timeout=10)
    assert recorder.kinds() == [
        "LinkAdded",
        "PlannerStarted",
        "TransferStarted",
        "TransferCompleted",
        "TransferStarted",
        "TransferCompleted",
        "LinkRemoved",
        "PlannerStopped",
    ]
    added, started = recorder.events[0], recorder.events[1]
    assert isinstance(added, LinkAdded) and added.link is link and added.planner is planner
    assert isinstance(started, PlannerStarted) and started.planner is planner
    transfers = [e for e in recorder.events if isinstance(e, (TransferStarted, TransferCompleted))]
    assert [e.update.transfer_number for e in transfers] == [0, 0, 1, 1]
    assert isinstance(recorder.events[-2], LinkRemoved)
    assert isinstance(recorder.events[-1], PlannerStopped)
    times = [e.at for e in recorder.events]
    assert times == sorted(times)


def test_transfer_completed_carries_counts_and_duration() -> None:
    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False)
    planner.add_observer(recorder)
    link = Link(
        ListInlet([1, 2, 3]),
        [RecordingOutlet(name="a"), RecordingOutlet(name="b")],
        interval=1,
        tags="counts",
        processors=[lambda records: records[:2]],
    )
    planner.add_links(link)
    planner.tick(link)
    assert planner.flush_observers(timeout=10)
    (done,) = [e for e in recorder.events if isinstance(e, TransferCompleted)]
    assert done.pulled == 3
    assert done.pushed == {"a": 2, "b": 2}
    assert done.duration >= 0
    assert done.failed is False


def test_a_failing_transfer_reports_completed_then_failed_with_the_exception() -> None:
    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False, ignore_exceptions=True)
    planner.add_observer(recorder)
    error = RuntimeError("disk full")
    link = make_link(outlet=FailingOutlet(error, name="bad"))
    planner.add_links(link)
    planner.tick(link)
    assert planner.flush_observers(timeout=10)
    assert recorder.kinds()[-3:] == ["TransferStarted", "TransferCompleted", "TransferFailed"]
    completed, failed = recorder.events[-2], recorder.events[-1]
    assert isinstance(completed, TransferCompleted) and completed.failed is True
    assert isinstance(failed, TransferFailed) and failed.exception is error


def test_observers_run_on_one_background_thread() -> None:
    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False)
    planner.add_observer(recorder)
    link = make_link()
    planner.add_links(link)
    planner.tick(link)
    assert planner.flush_observers(timeout=10)
    assert recorder.threads == {"databay_bus-observers"}


def test_a_raising_observer_is_logged_and_breaks_neither_transfers_nor_other_observers(
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def broken(event: Event) -> None:
        calls.append(type(event).__name__)
        raise ValueError("observer bug")

    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False)
    planner.add_observer(broken)
    planner.add_observer(recorder)
    outlet = RecordingOutlet(name="out")
    link = make_link(outlet=outlet)
    planner.add_links(link)
    planner.tick(link)
    planner.tick(link)
    assert planner.flush_observers(timeout=10)
    assert outlet.payloads == [[1, 2, 3], [1, 2, 3]]
    assert link.metrics.failures == 0
    assert calls == recorder.kinds()
    assert recorder.kinds().count("TransferCompleted") == 2
    failures = [r for r in databay_logs.records if "observer" in r.getMessage()]
    assert failures and failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None and "observer bug" in str(failures[0].exc_info[1])


def test_a_slow_observer_does_not_hold_back_transfers() -> None:
    """While the observer is stuck on the first event, every transfer still completes."""
    release = threading.Event()
    seen: list[Event] = []

    def slow(event: Event) -> None:
        assert release.wait(30), "never released"
        seen.append(event)

    planner = ManualPlanner(immediate_transfer=False)
    planner.add_observer(slow)
    outlet = RecordingOutlet(name="out")
    link = make_link(outlet=outlet)
    planner.add_links(link)  # LinkAdded: the observer now blocks on it
    for _ in range(5):
        planner.tick(link)
    assert link.metrics.transfers == 5
    assert len(outlet.batches) == 5
    assert seen == []  # nothing delivered yet: the observer is still stuck
    release.set()
    assert planner.flush_observers(timeout=10)
    assert [type(e).__name__ for e in seen].count("TransferCompleted") == 5


def test_flush_times_out_while_an_observer_is_stuck() -> None:
    release = threading.Event()
    planner = ManualPlanner()
    planner.add_observer(lambda event: release.wait(30))
    planner.add_links(make_link())
    assert planner.flush_observers(timeout=0.05) is False
    release.set()
    assert planner.flush_observers(timeout=10) is True


def test_removed_observer_hears_nothing_more() -> None:
    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False)
    planner.add_observer(recorder)
    link = make_link()
    planner.add_links(link)
    assert planner.flush_observers(timeout=10)
    planner.remove_observer(recorder)
    planner.tick(link)
    assert planner.flush_observers(timeout=10)
    assert recorder.kinds() == ["LinkAdded"]


@pytest.mark.parametrize("bad", [None, 3, "print"])
def test_add_observer_rejects_what_cannot_be_called(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="observer must be"):
        ManualPlanner().add_observer(bad)  # type: ignore[arg-type]


def test_queue_failures_and_dead_letters_are_observed() -> None:
    """A queued link reports DeliveryFailed per failed push and RecordDeadLettered per record."""
    recorder = Recorder()
    planner = ManualPlanner(immediate_transfer=False, ignore_exceptions=True)
    planner.add_observer(recorder)
    link = Link(
        ListInlet([1]),
        FailingOutlet(name="bad"),
        interval=1,
        tags="dead",
        queue=MemoryQueue(),
        retry=RetryPolicy(max_attempts=1),
    )
    planner.add_links(link)
    planner.tick(link)
    assert planner.flush_observers(timeout=10)
    kinds = recorder.kinds()
    assert "DeliveryFailed" in kinds and "RecordDeadLettered" in kinds
    assert kinds.index("DeliveryFailed") < kinds.index("TransferCompleted")
