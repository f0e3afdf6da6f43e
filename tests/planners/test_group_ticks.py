"""How the built-in planners run a tick of several links (``planners/_groups.py``).

Quick links share one worker; a link that hangs is left behind by the others; one that proved
slow starts on a worker of its own. Every wait is on an event or ``wait_until`` with a generous
timeout; where a test needs the inline run never to be handed off, it raises the budget to a
minute instead of relying on the links being quick.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from core_fakes import GateOutlet, ListInlet, RecordingOutlet, recording_link

from databay_bus import Link, Record, Update
from databay_bus.planners import ApsPlanner, SchedulePlanner, _groups
from databay_bus.planners.base import BasePlanner

PLANNERS: list[Callable[[list[Link]], BasePlanner]] = [
    lambda links: ApsPlanner(links),
    lambda links: SchedulePlanner(links, refresh_interval=0.05),
]


@pytest.fixture(params=PLANNERS, ids=["ApsPlanner", "SchedulePlanner"])
def make_planner(request: pytest.FixtureRequest) -> Iterator[Callable[[list[Link]], Any]]:
    """Builds the planner under test; shuts each down without waiting (gates may hang)."""
    made: list[BasePlanner] = []

    def make(links: list[Link]) -> Any:
        made.append(request.param(links))
        return made[-1]

    yield make
    for planner in made:
        planner.shutdown(wait=False)


class ThreadOutlet(RecordingOutlet):
    """Notes the thread of each push."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.threads.append(threading.get_ident())
        super().push(records, update)


def test_quick_links_of_a_tick_share_one_worker(
    make_planner: Callable[[list[Link]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_groups, "TICK_BUDGET", 60.0)  # never handed off, however slow the CI
    outlets = [ThreadOutlet() for _ in range(5)]
    planner = make_planner([Link(ListInlet([1]), outlet, 30) for outlet in outlets])
    planner.start(block=False)
    for outlet in outlets:
        assert outlet.pushed.wait(10)
    threads = {thread for outlet in outlets for thread in outlet.threads}
    assert len(threads) == 1, "the five links of the tick woke several workers"
    assert threads != {threading.get_ident()}, "the tick ran on the thread that started it"


def test_a_hung_link_does_not_hold_back_the_rest_of_its_tick(
    make_planner: Callable[[list[Link]], Any], wait_until: Callable[..., None]
) -> None:
    gate = GateOutlet()
    hung = Link(ListInlet([1]), gate, 30)
    others = [recording_link(30) for _ in range(3)]
    planner = make_planner([hung, *(link for link, _ in others)])  # the hung one runs first
    planner.start(block=False)
    assert gate.entered.wait(10)
    for _, outlet in others:
        assert outlet.pushed.wait(10), "a link waited for the hung one"
    assert not gate.finished.is_set()
    group = planner._groups.of(hung)
    gate.release.set()
    wait_until(lambda: id(hung) in group.slow, message="the hung link is known as slow")


def test_a_link_that_proved_slow_starts_on_a_worker_of_its_own(
    make_planner: Callable[[list[Link]], Any],
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
) -> None:
    gate = GateOutlet()
    slow = Link(ListInlet([1]), gate, 30)
    quick, quick_out = recording_link(30)
    planner = make_planner([slow, quick])
    planner.start(block=False)
    assert gate.entered.wait(10)
    assert quick_out.pushed.wait(10)  # handed off: the blocked push outlasted the budget
    gate.release.set()
    group = planner._groups.of(slow)
    wait_until(lambda: not group.pending, message="tick 0 ended")
    assert id(slow) in group.slow
    monkeypatch.setattr(_groups, "TICK_BUDGET", 60.0)  # from now on, no hand-off would help
    gate.entered.clear()
    gate.release.clear()
    quick_out.pushed.clear()
    planner._groups.dispatch(group)  # tick 1, by hand (the next one is 30 s away)
    assert gate.entered.wait(10)
    assert quick_out.pushed.wait(10), "the quick link waited for the one known as slow"
    gate.release.set()


class ExitOutlet(RecordingOutlet):
    """Raises SystemExit from its first push."""

    def push(self, records: list[Record], update: Update) -> None:
        if not self.batches:
            self.batches.append(records)
            raise SystemExit(3)
        super().push(records, update)


def test_a_system_exit_in_a_tick_leaves_the_other_links_due(
    make_planner: Callable[[list[Link]], Any],
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
) -> None:
    monkeypatch.setattr(_groups, "TICK_BUDGET", 60.0)  # the tick runs on one worker
    exiting = ExitOutlet()
    first = Link(ListInlet([1]), exiting, 30)
    second, second_out = recording_link(30)
    planner = make_planner([first, second])
    planner.start(block=False)
    group = planner._groups.of(first)
    wait_until(lambda: exiting.batches and not group.pending, message="tick 0 ended")
    planner._groups.dispatch(group)  # tick 1, by hand
    assert second_out.pushed.wait(10), "the link after the SystemExit was never due again"
    assert second.metrics.skipped == 0
