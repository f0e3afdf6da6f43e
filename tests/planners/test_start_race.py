"""shutdown() while start() is still starting nodes: the planner ends stopped, for good."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner, PlannerState, SchedulePlanner


class SlowStartInlet(Inlet):
    def __init__(self) -> None:
        super().__init__()
        self.starting = threading.Event()
        self.release = threading.Event()
        self.pulls = 0

    def on_start(self) -> None:
        self.starting.set()
        assert self.release.wait(10)

    def pull(self, update: Update) -> int:
        self.pulls += 1
        return 1


class Sink(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        pass


@pytest.mark.parametrize(
    "make", [ApsPlanner, lambda link: SchedulePlanner(link, refresh_interval=0.05)]
)
def test_shutdown_during_start_wins(make: Any) -> None:
    """start() sees the shutdown request, shuts its nodes down and never schedules."""
    inlet = SlowStartInlet()
    link = Link(inlet, Sink(), 0.05)
    planner = make(link)
    starter = threading.Thread(target=planner.start, kwargs={"block": True})
    starter.start()
    assert inlet.starting.wait(10)
    stopper = threading.Thread(target=planner.shutdown, kwargs={"wait": True})
    stopper.start()
    inlet.release.set()
    stopper.join(10)
    starter.join(10)
    assert not stopper.is_alive() and not starter.is_alive()
    assert planner.state is PlannerState.STOPPED
    assert not inlet.active
    assert inlet.pulls == 0  # no immediate transfer, no scheduled one
    assert link.job is None


def test_shutdown_from_on_start_on_the_starting_thread() -> None:
    """A node calling planner.shutdown() from its own on_start does not deadlock."""
    holder: dict[str, Any] = {}

    class StopsPlanner(Inlet):
        def on_start(self) -> None:
            holder["planner"].shutdown(wait=True)

        def pull(self, update: Update) -> int:
            return 1

    inlet = StopsPlanner()
    planner = ApsPlanner(Link(inlet, Sink(), 1))
    holder["planner"] = planner
    planner.start(block=False)
    assert planner.state is PlannerState.STOPPED
    assert not inlet.active
