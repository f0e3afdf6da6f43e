"""ApsPlanner: its APScheduler settings, pause/resume, and its own scheduler per start."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timezone

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link
from databay_bus.errors import PlannerStateError
from databay_bus.planners import APSPlanner, ApsPlanner


@pytest.fixture
def planners() -> Iterator[list[ApsPlanner]]:
    made: list[ApsPlanner] = []
    yield made
    for planner in made:
        planner.shutdown(wait=True)


def recording_link(interval: float = 0.1) -> tuple[Link, RecordingOutlet]:
    outlet = RecordingOutlet()
    return Link(ListInlet([1]), outlet, interval), outlet


def test_defaults_and_repr() -> None:
    planner = ApsPlanner()
    assert planner.threads == 30
    assert planner.ignore_exceptions is False
    assert planner.immediate_transfer is True
    assert planner.shutdown_at_exit is False
    assert repr(planner) == "ApsPlanner(threads:30)"
    assert repr(ApsPlanner(threads=3)) == "ApsPlanner(threads:3)"


def test_scheduler_settings(planners: list[ApsPlanner]) -> None:
    link, _ = recording_link(30)
    planner = ApsPlanner(link, threads=5)
    planners.append(planner)
    planner.start(block=False)
    scheduler = planner._scheduler
    assert scheduler is not None
    assert scheduler.timezone == timezone.utc
    job = link.job
    assert job.coalesce is False
    assert job.max_instances == 5
    assert job.trigger.interval.total_seconds() == 30


def test_job_defaults_override(planners: list[ApsPlanner]) -> None:
    link, _ = recording_link(30)
    planner = ApsPlanner(
        link, job_defaults_override={"coalesce": True, "misfire_grace_time": 7, "max_instances": 2}
    )
    planners.append(planner)
    planner.start(block=False)
    assert (link.job.coalesce, link.job.misfire_grace_time, link.job.max_instances) == (
        True,
        7,
        2,
    )


def test_executors_override(planners: list[ApsPlanner]) -> None:
    ran_on: list[str] = []
    link = Link(
        ListInlet(lambda update: ran_on.append(threading.current_thread().name) or 1),
        RecordingOutlet(),
        30,
    )
    executor = ThreadPoolExecutor(2)
    planner = ApsPlanner(link, executors_override={"default": executor})
    planners.append(planner)
    planner.start(block=False)
    assert link.outlets[0].pushed.wait(10)  # type: ignore[attr-defined]
    assert planner._scheduler is not None
    assert planner._scheduler._lookup_executor("default") is executor
    planner.shutdown(wait=True)


def test_pause_and_resume(
    planners: list[ApsPlanner],
    wait_until: Callable[..., None],
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    link, outlet = recording_link(0.05)
    planner = ApsPlanner(link, threads=2)
    planners.append(planner)
    planner.start(block=False)
    assert outlet.pushed.wait(10)
    planner.pause()
    assert planner._scheduler is not None
    assert planner._scheduler.state == STATE_PAUSED
    assert planner.running  # paused is still running: shutdown is still needed
    planner.resume()
    assert planner._scheduler.state == STATE_RUNNING
    seen = len(outlet.batches)
    wait_until(lambda: len(outlet.batches) >= seen + 2, message="transfers after resume")
    assert "Pausing ApsPlanner(threads:2)" in databay_logs.text
    assert "Resuming ApsPlanner(threads:2)" in databay_logs.text


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_need_a_running_planner(action: str) -> None:
    planner = ApsPlanner()
    with pytest.raises(PlannerStateError, match=rf"cannot {action}.*stopped"):
        getattr(planner, action)()


def test_each_start_builds_a_new_scheduler(planners: list[ApsPlanner]) -> None:
    link, _outlet = recording_link(30)
    planner = ApsPlanner(link)
    planners.append(planner)
    planner.start(block=False)
    first = planner._scheduler
    planner.shutdown()
    assert planner._scheduler is None
    assert link.job is None
    planner.start(block=False)
    assert planner._scheduler is not None and planner._scheduler is not first
    assert link.job is not None


def test_two_planners_keep_their_own_jobs(planners: list[ApsPlanner]) -> None:
    first_link, first_out = recording_link(30)
    second_link, second_out = recording_link(30)
    first, second = ApsPlanner(first_link), ApsPlanner(second_link)
    planners.extend([first, second])
    first.start(block=False)
    assert first_out.pushed.wait(10)
    assert second_out.batches == []
    assert second_link.job is None
    assert [job.args[0] for job in first._scheduler.get_jobs()] == [first_link]  # type: ignore[union-attr]


def test_deprecated_aps_planner_alias() -> None:
    with pytest.warns(DeprecationWarning, match="ApsPlanner"):
        planner = APSPlanner(threads=2)
    assert isinstance(planner, ApsPlanner)
    assert planner.threads == 2
