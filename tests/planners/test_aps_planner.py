"""ApsPlanner: its APScheduler settings, pause/resume, and its own scheduler per start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timezone
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from core_fakes import GateOutlet, ListInlet, RecordingOutlet, recording_link

from databay_bus import Link
from databay_bus.errors import PlannerStateError
from databay_bus.planners import APSPlanner, ApsPlanner


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


def test_job_defaults_override_applies_to_the_shared_job(planners: list[ApsPlanner]) -> None:
    first, _ = recording_link(30)
    second, _ = recording_link(30)
    planner = ApsPlanner(
        [first, second],
        job_defaults_override={"coalesce": True, "misfire_grace_time": 7, "max_instances": 2},
    )
    planners.append(planner)
    planner.start(block=False)
    job = first.job
    assert second.job is job  # one job for the group: the defaults are its settings
    assert (job.coalesce, job.misfire_grace_time, job.max_instances) == (True, 7, 2)


class _CountingExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """APScheduler's own pool executor, remembering which jobs it was given."""

    def __init__(self) -> None:
        super().__init__(2)
        self.job_ids: list[str] = []

    def submit_job(self, job: Any, run_times: Any) -> None:
        self.job_ids.append(job.id)
        super().submit_job(job, run_times)


def test_executors_override_runs_the_dispatch_jobs_not_the_transfers(
    planners: list[ApsPlanner],
) -> None:
    """The 'default' executor runs the group's dispatch job; transfers stay on our workers."""
    ran_on: list[str] = []
    link = Link(
        ListInlet(lambda update: ran_on.append(threading.current_thread().name) or 1),
        RecordingOutlet(),
        0.05,
        immediate_transfer=False,  # the first tick comes from the scheduler too
    )
    executor = _CountingExecutor()
    planner = ApsPlanner(link, executors_override={"default": executor})
    planners.append(planner)
    planner.start(block=False)
    assert link.outlets[0].pushed.wait(10)  # type: ignore[attr-defined]
    assert planner._scheduler is not None
    assert planner._scheduler._lookup_executor("default") is executor
    assert executor.job_ids[0] == link.job.id
    assert ran_on[0].startswith("databay_bus-aps")
    planner.shutdown(wait=True)


def test_dispatch_runs_inline_and_reports_events(planners: list[ApsPlanner]) -> None:
    """Without an override, the dispatch job runs in the scheduler's thread, and APScheduler's
    executed event is reported once the transfers are handed over, not when they end."""
    gate = GateOutlet()
    link = Link(ListInlet([1]), gate, 0.05, immediate_transfer=False)
    planner = ApsPlanner(link)
    planners.append(planner)
    executed = threading.Event()
    seen: list[tuple[str, str]] = []

    def listen(event: Any) -> None:
        seen.append((event.job_id, threading.current_thread().name))
        executed.set()

    original = planner._new_scheduler

    def with_listener() -> Any:
        scheduler = original()
        scheduler.add_listener(listen, EVENT_JOB_EXECUTED)
        return scheduler

    planner._new_scheduler = with_listener  # type: ignore[method-assign]
    planner.start(block=False)
    try:
        assert executed.wait(10), "no executed event while the transfer is still running"
        assert seen[0] == (link.job.id, "APScheduler")
        assert gate.entered.wait(10)
    finally:
        gate.release.set()


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
    assert first._scheduler.get_jobs() == [first_link.job]  # type: ignore[union-attr]


def test_deprecated_aps_planner_alias() -> None:
    with pytest.warns(DeprecationWarning, match="ApsPlanner"):
        planner = APSPlanner(threads=2)
    assert isinstance(planner, ApsPlanner)
    assert planner.threads == 2
